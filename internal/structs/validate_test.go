package structs

import (
	"strings"
	"testing"
	"time"
)

func validFunction() *Function {
	return &Function{Name: "fn", Runtime: "provided.al2023", Handler: "bootstrap", MemoryMB: DefaultMemoryMB,
		Timeout: DefaultTimeout, EphemeralStorageMB: DefaultEphemeralMB, Environment: map[string]string{"GREETING": "hi"}}
}

// TestFunctionValidate: each broken rule names its field (the Lambda API's name) and the bad
// value; a valid function passes.
func TestFunctionValidate(t *testing.T) {
	if errs := validFunction().Validate(); len(errs) != 0 {
		t.Fatalf("a valid function: %v", errs)
	}
	hour := 2 * time.Hour
	cases := map[string]struct {
		change       func(*Function)
		field, value string
	}{
		"name":           {func(f *Function) { f.Name = "bad name!" }, "FunctionName", `"bad name!"`},
		"runtime":        {func(f *Function) { f.Runtime = "Node 20" }, "Runtime", `"Node 20"`},
		"handler":        {func(f *Function) { f.Handler = "a b" }, "Handler", `"a b"`},
		"description":    {func(f *Function) { f.Description = strings.Repeat("x", 257) }, "Description", "257"},
		"memory low":     {func(f *Function) { f.MemoryMB = 64 }, "MemorySize", "64 MB"},
		"memory high":    {func(f *Function) { f.MemoryMB = 20480 }, "MemorySize", "20480 MB"},
		"timeout 0":      {func(f *Function) { f.Timeout = 0 }, "Timeout", "0s"},
		"timeout 901":    {func(f *Function) { f.Timeout = 901 * time.Second }, "Timeout", "15m1s"},
		"ephemeral":      {func(f *Function) { f.EphemeralStorageMB = 100 }, "EphemeralStorage.Size", "100 MB"},
		"freeze delay":   {func(f *Function) { f.FreezeDelay = &hour }, "GatewayOptions.FreezeDelayMs", "2h0m0s"},
		"env name":       {func(f *Function) { f.Environment["1X"] = "x" }, "Environment.Variables", `"1X"`},
		"env reserved":   {func(f *Function) { f.Environment["AWS_REGION"] = "x" }, "Environment.Variables", "AWS_REGION"},
		"env too large":  {func(f *Function) { f.Environment["BIG"] = strings.Repeat("x", 4096) }, "Environment.Variables", "4109 bytes"},
		"dead letter":    {func(f *Function) { f.DeadLetterTarget = "function:sink" }, "DeadLetterConfig.TargetArn", `"function:sink"`},
		"dead letter ?":  {func(f *Function) { f.DeadLetterTarget = "function:dlq" }, "DeadLetterConfig.TargetArn", `"function:dlq"`},
		"fs outside mnt": {func(f *Function) { f.FileSystems = []FileSystemConfig{{FileSystem: "s", LocalMountPath: "/etc"}} }, "FileSystemConfigs.LocalMountPath", `"/etc" is outside /mnt`},
		"fs mnt itself":  {func(f *Function) { f.FileSystems = []FileSystemConfig{{FileSystem: "s", LocalMountPath: "/mnt"}} }, "FileSystemConfigs.LocalMountPath", "not a folder under /mnt"},
		"fs dot dot": {func(f *Function) {
			f.FileSystems = []FileSystemConfig{{FileSystem: "s", LocalMountPath: "/mnt/../etc"}}
		}, "FileSystemConfigs.LocalMountPath", `".."`},
		"fs name": {func(f *Function) { f.FileSystems = []FileSystemConfig{{FileSystem: "../x", LocalMountPath: "/mnt/x"}} }, "FileSystemConfigs.Arn", `"../x"`},
		"fs ap name": {func(f *Function) {
			f.FileSystems = []FileSystemConfig{{FileSystem: "s", AccessPoint: "a/b", LocalMountPath: "/mnt/x"}}
		}, "FileSystemConfigs.Arn", `"a/b"`},
		"fs two": {func(f *Function) {
			f.FileSystems = []FileSystemConfig{{FileSystem: "s", LocalMountPath: "/mnt/a"}, {FileSystem: "t", LocalMountPath: "/mnt/b"}}
		}, "FileSystemConfigs", "2 file systems"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f := validFunction()
			c.change(f)
			errs := f.Validate()
			if len(errs) != 1 || errs[0].Field != c.field || !strings.Contains(errs[0].Message, c.value) {
				t.Fatalf("want one error on %s naming %s, got %v", c.field, c.value, errs)
			}
		})
	}
}

// TestLocalMountPath: a folder under /mnt, written plainly.
func TestLocalMountPath(t *testing.T) {
	for _, p := range []string{"/mnt/efs", "/mnt/a.b_c-d", "/mnt/shared/team/data", "/mnt/x"} {
		if errs := ValidateLocalMountPath(p); len(errs) != 0 {
			t.Errorf("%s: %v", p, errs)
		}
	}
	for _, p := range []string{"", "/mnt", "/mnt/", "mnt/x", "/mntx", "/mnt/x/", "/mnt/../etc", "/mnt/a/../../etc", "/mnt/a..b", "/mnt/./x",
		"/mnt//x", "/mnt/x\x00", "/mnt/x y", "/mnt/é", "/tmp/x", "/mnt/" + strings.Repeat("a", 156)} {
		if errs := ValidateLocalMountPath(p); len(errs) != 1 || errs[0].Field != "FileSystemConfigs.LocalMountPath" {
			t.Errorf("%q: %v", p, errs)
		}
	}
}

func TestAliasValidate(t *testing.T) {
	ok := []Alias{{Name: "live", FunctionVersion: "$LATEST"}, {Name: "live", FunctionVersion: "3", AdditionalVersionWeights: map[string]float64{"4": 0.1}}}
	for _, a := range ok {
		if errs := a.Validate(); len(errs) != 0 {
			t.Errorf("%+v: %v", a, errs)
		}
	}
	bad := map[string]Alias{
		"Name":                                   {Name: "12", FunctionVersion: "1"},
		"FunctionVersion":                        {Name: "live", FunctionVersion: "new"},
		"RoutingConfig.AdditionalVersionWeights": {Name: "live", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"2": 1.5}},
		"Description":                            {Name: "live", FunctionVersion: "1", Description: strings.Repeat("d", 257)},
	}
	for field, a := range bad {
		if errs := a.Validate(); len(errs) != 1 || errs[0].Field != field {
			t.Errorf("%+v: want one error on %s, got %v", a, field, errs)
		}
	}
	latest := Alias{Name: "live", FunctionVersion: LatestVersion, AdditionalVersionWeights: map[string]float64{"2": 0.5}}
	if errs := latest.Validate(); len(errs) == 0 {
		t.Error("routing from $LATEST was accepted")
	}
}

func TestURLValidate(t *testing.T) {
	u := FunctionURL{AuthType: AuthNone, InvokeMode: InvokeBuffered, Cors: &CORS{AllowOrigins: []string{"https://example.com"},
		AllowMethods: []string{"get"}, AllowHeaders: []string{"X-Custom"}, MaxAge: 60}}
	u.Cors.Normalize()
	if errs := u.Validate(); len(errs) != 0 {
		t.Fatalf("a valid URL: %v", errs)
	}
	bad := map[string]FunctionURL{
		"AuthType":          {AuthType: "IAM", InvokeMode: InvokeBuffered},
		"InvokeMode":        {AuthType: AuthNone, InvokeMode: "STREAM"},
		"Qualifier":         {AuthType: AuthNone, InvokeMode: InvokeBuffered, Qualifier: "a--b"},
		"Cors.MaxAge":       {AuthType: AuthNone, InvokeMode: InvokeBuffered, Cors: &CORS{MaxAge: 90000}},
		"Cors.AllowMethods": {AuthType: AuthNone, InvokeMode: InvokeBuffered, Cors: &CORS{AllowMethods: []string{"FETCH"}}},
		"Cors.AllowOrigins": {AuthType: AuthNone, InvokeMode: InvokeBuffered, Cors: &CORS{AllowOrigins: []string{"example.com"}}},
		"Cors.AllowHeaders": {AuthType: AuthNone, InvokeMode: InvokeBuffered, Cors: &CORS{AllowHeaders: []string{"a b"}}},
	}
	for field, u := range bad {
		if errs := u.Validate(); len(errs) != 1 || errs[0].Field != field {
			t.Errorf("%+v: want one error on %s, got %v", u, field, errs)
		}
	}
}

func TestTriggerCheck(t *testing.T) {
	ok := Trigger{Name: "orders", Plugin: "queue", Source: "orders", MaximumRetryAttempts: -1}
	if errs := ok.Check(); len(errs) != 0 || ok.Validate() != nil {
		t.Fatalf("a valid trigger: %v", errs)
	}
	bad := map[string]func(*Trigger){
		"name":                   func(t *Trigger) { t.Name = "a b" },
		"plugin":                 func(t *Trigger) { t.Plugin = "" },
		"source":                 func(t *Trigger) { t.Source = "" },
		"batch_size":             func(t *Trigger) { t.BatchSize = MaxTriggerBatchSize + 1 },
		"batch_window":           func(t *Trigger) { t.BatchWindow = 6 * time.Minute },
		"maximum_retry_attempts": func(t *Trigger) { t.MaximumRetryAttempts = -2 },
		"maximum_record_age":     func(t *Trigger) { t.MaximumRecordAge = time.Second },
		"starting_position":      func(t *Trigger) { t.StartingPosition = AtTimestamp },
		"on_failure":             func(t *Trigger) { t.OnFailure = "sqs x" },
	}
	for field, change := range bad {
		tr := ok
		change(&tr)
		if errs := tr.Check(); len(errs) != 1 || errs[0].Field != field || tr.Validate() == nil || !strings.Contains(tr.Validate().Error(), field) {
			t.Errorf("%s: want one error on it, got %v", field, errs)
		}
	}
}

func TestProvisionedRules(t *testing.T) {
	for q, bad := range map[string]bool{"": true, LatestVersion: true, "0": true, "1": false, "live": false} {
		if errs := ValidateProvisionedQualifier(q); (len(errs) > 0) != bad {
			t.Errorf("qualifier %q: %v", q, errs)
		}
	}
	if ValidateProvisionedCount(0) == nil || ValidateProvisionedCount(1) != nil {
		t.Error("provisioned count: 0 accepted or 1 refused")
	}
	if ValidateReservedConcurrency(-1) == nil || ValidateReservedConcurrency(0) != nil {
		t.Error("reserved concurrency: -1 accepted or 0 refused")
	}
}

// TestEventInvokeConfigCheck: each broken rule names its field and the bad value, in a fixed
// order; a function is not its own destination; valid configurations pass.
func TestEventInvokeConfigCheck(t *testing.T) {
	two, three := 2, 3
	for _, c := range []EventInvokeConfig{
		{Function: "fn", Qualifier: LatestVersion},
		{Function: "fn", Qualifier: "live", MaximumRetryAttempts: &two, MaximumEventAge: MaxEventAge, OnSuccess: "function:other", OnFailure: "stream:s"},
		{Function: "fn", Qualifier: "3", MaximumEventAge: MinEventAge, OnFailure: "queue:dlq"},
	} {
		if errs := c.Check(); len(errs) != 0 {
			t.Errorf("%+v: %v", c, errs)
		}
	}
	bad := EventInvokeConfig{Function: "fn", Qualifier: "a b", MaximumRetryAttempts: &three, MaximumEventAge: 90*time.Second + time.Millisecond,
		OnSuccess: "sns:a topic", OnFailure: "function:fn"}
	errs := bad.Check()
	want := []struct{ field, value string }{{"Qualifier", `"a b"`}, {"MaximumRetryAttempts", "3"}, {"MaximumEventAgeInSeconds", "whole seconds"},
		{"DestinationConfig.OnSuccess.Destination", `"sns:a topic"`}, {"DestinationConfig.OnFailure.Destination", "its own destination"}}
	if len(errs) != len(want) {
		t.Fatalf("errors: %v", errs)
	}
	for i, w := range want {
		if errs[i].Field != w.field || !strings.Contains(errs[i].Message, w.value) {
			t.Errorf("error %d: %v, want %s naming %s", i, errs[i], w.field, w.value)
		}
	}
	if errs := ValidateEventAge(0); len(errs) != 1 || !strings.Contains(errs[0].Message, "0s is out of range") {
		t.Errorf("an event age of 0: %v", errs)
	}
	for d, ok := range map[string]bool{"queue:dlq": true, "stream:s": true, "function:f": false, "queue:": false, "redis:dead.letters": true} {
		if ValidDeadLetterTarget(d) != ok {
			t.Errorf("ValidDeadLetterTarget(%q) = %v", d, !ok)
		}
	}
}

// TestValidDestination: the gateway's own kinds take a name; any other kind is a plugin block's
// name, whose target may be any short printable word (a Redis key, a Kafka topic).
func TestValidDestination(t *testing.T) {
	for d, ok := range map[string]bool{
		"function:f": true, "queue:q-1": true, "stream:s_1": true, "redis:orders.v1/eu": true, "kafka:" + strings.Repeat("t", 256): true,
		"function:a.b": false, "queue:": false, "stream": false, "": false, ":x": false, "a b:x": false, "redis:": false,
		"redis:a b": false, "redis:a\nb": false, "redis:é": false, "kafka:" + strings.Repeat("t", 257): false,
		strings.Repeat("p", 65) + ":x": false, "arn:aws:sqs:us-east-1:1:dlq": false,
	} {
		if ValidDestination(d) != ok {
			t.Errorf("ValidDestination(%q) = %v", d, !ok)
		}
	}
}
