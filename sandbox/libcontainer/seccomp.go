package libcontainer

// Seccomp settings (the agent's `sandbox { seccomp }`); any other value is a profile file.
const (
	SeccompDefault    = "default"
	SeccompUnconfined = "unconfined"
)
