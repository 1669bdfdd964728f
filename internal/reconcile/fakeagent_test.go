package reconcile_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

const region = "us-east-1"

// fakeAgent serves, from maps, the routes of the agent's API a reconciler uses, as a real
// agent answers them (the function must exist, unknown ones are ResourceNotFoundException),
// and records every write. The real handlers need Raft, a code store and a sandbox: this keeps
// the tests about what the reconciler asks.
type fakeAgent struct {
	mu          sync.Mutex
	fns         map[string]*lambda.FunctionConfiguration
	code        map[string]bool // hex SHA-256 of the zips held
	versions    map[string]int
	reserved    map[string]int
	aliases     map[string]map[string]lambda.AliasConfiguration
	provisioned map[string]map[string]int
	urls        map[string]map[string]lambda.FunctionURLConfig         // by qualifier ("" for none)
	asyncs      map[string]map[string]lambda.FunctionEventInvokeConfig // by qualifier ($LATEST for none)
	triggers    map[string]map[string]*structs.Trigger
	layers      map[string][]*lambda.LayerVersionOutput // versions by layer, oldest first
	cscs        map[string]*lambda.CodeSigningConfig    // by ID
	signing     map[string]string                       // each function's configuration's ID
	// writes are the requests that are not reads, "METHOD path?query", in order.
	writes []string
	// configBodies are the bodies of UpdateFunctionConfiguration, in order.
	configBodies []string
	// fail answers the requests "METHOD path" it names with an InvalidParameterValueException.
	fail map[string]bool
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{fns: map[string]*lambda.FunctionConfiguration{}, code: map[string]bool{}, versions: map[string]int{},
		reserved: map[string]int{}, aliases: map[string]map[string]lambda.AliasConfiguration{},
		provisioned: map[string]map[string]int{}, urls: map[string]map[string]lambda.FunctionURLConfig{},
		asyncs:   map[string]map[string]lambda.FunctionEventInvokeConfig{},
		triggers: map[string]map[string]*structs.Trigger{}, layers: map[string][]*lambda.LayerVersionOutput{}, fail: map[string]bool{},
		cscs: map[string]*lambda.CodeSigningConfig{}, signing: map[string]string{}}
}

// start serves g and returns a real API client of it.
func (g *fakeAgent) start(t *testing.T) *api.Client {
	t.Helper()
	srv := httptest.NewServer(g.handler())
	t.Cleanup(srv.Close)
	client, err := api.New(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// take returns the writes so far and forgets them.
func (g *fakeAgent) take() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.writes
	g.writes = nil
	return w
}

func lambdaError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Message": msg})
}

func reply(w http.ResponseWriter, v any) { _ = json.NewEncoder(w).Encode(v) }

func codeSha(zip []byte) (hexSum, b64 string) {
	sum := sha256.Sum256(zip)
	return hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(sum[:])
}

func (g *fakeAgent) handler() http.Handler {
	mux := http.NewServeMux()
	// fn routes need the function named by the path to exist.
	fn := func(pattern string, h func(w http.ResponseWriter, r *http.Request, name string)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			name := r.PathValue("name")
			if g.fns[name] == nil {
				lambdaError(w, 404, "ResourceNotFoundException", "Function not found: "+name)
				return
			}
			h(w, r, name)
		})
	}
	mux.HandleFunc("GET /2015-03-31/functions/{$}", func(w http.ResponseWriter, r *http.Request) {
		out := lambda.ListFunctionsOutput{Functions: []lambda.FunctionConfiguration{}}
		for _, c := range g.fns {
			out.Functions = append(out.Functions, *c)
		}
		sort.Slice(out.Functions, func(i, j int) bool { return out.Functions[i].FunctionName < out.Functions[j].FunctionName })
		reply(w, out)
	})
	mux.HandleFunc("POST /2015-03-31/functions", func(w http.ResponseWriter, r *http.Request) {
		var in lambda.CreateFunctionInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		if g.fns[in.FunctionName] != nil {
			lambdaError(w, 409, "ResourceConflictException", "Function already exist: "+in.FunctionName)
			return
		}
		c := &lambda.FunctionConfiguration{FunctionName: in.FunctionName, Runtime: in.Runtime, Handler: in.Handler,
			Description: in.Description, Environment: in.Environment, EphemeralStorage: in.EphemeralStorage, GatewayOptions: in.GatewayOptions}
		if in.MemorySize != nil {
			c.MemorySize = *in.MemorySize
		}
		if in.Timeout != nil {
			c.Timeout = *in.Timeout
		}
		if in.DeadLetterConfig != nil && in.DeadLetterConfig.TargetArn != "" {
			c.DeadLetterConfig = in.DeadLetterConfig
		}
		c.FileSystemConfigs = in.FileSystemConfigs
		if !g.setCode(w, c, in.Code.ZipFile, in.Code.GatewayCodeSha256) || !g.setLayers(w, c, in.Layers) {
			return
		}
		if in.CodeSigningConfigArn != "" {
			g.signing[in.FunctionName], _ = lambda.ParseCodeSigningConfigARN(in.CodeSigningConfigArn)
		}
		g.fns[in.FunctionName] = c
		w.WriteHeader(201)
		reply(w, c)
	})
	fn("GET /2015-03-31/functions/{name}", func(w http.ResponseWriter, r *http.Request, name string) {
		reply(w, lambda.GetFunctionOutput{Configuration: *g.fns[name]})
	})
	fn("DELETE /2015-03-31/functions/{name}", func(w http.ResponseWriter, r *http.Request, name string) {
		delete(g.fns, name)
		w.WriteHeader(204)
	})
	fn("PUT /2015-03-31/functions/{name}/code", func(w http.ResponseWriter, r *http.Request, name string) {
		var in lambda.UpdateFunctionCodeInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		if g.setCode(w, g.fns[name], in.ZipFile, in.GatewayCodeSha256) {
			reply(w, g.fns[name])
		}
	})
	fn("PUT /2015-03-31/functions/{name}/configuration", func(w http.ResponseWriter, r *http.Request, name string) {
		body, _ := io.ReadAll(r.Body)
		g.configBodies = append(g.configBodies, string(body))
		var in lambda.UpdateFunctionConfigurationInput
		_ = json.Unmarshal(body, &in)
		c := g.fns[name]
		set := func(dst *string, src *string) {
			if src != nil {
				*dst = *src
			}
		}
		set(&c.Runtime, in.Runtime)
		set(&c.Handler, in.Handler)
		set(&c.Description, in.Description)
		if in.MemorySize != nil {
			c.MemorySize = *in.MemorySize
		}
		if in.Timeout != nil {
			c.Timeout = *in.Timeout
		}
		if in.Environment != nil {
			c.Environment = in.Environment
		}
		if in.EphemeralStorage != nil {
			c.EphemeralStorage = in.EphemeralStorage
		}
		if in.GatewayOptions != nil {
			c.GatewayOptions = in.GatewayOptions
		}
		if in.DeadLetterConfig != nil {
			c.DeadLetterConfig = nil
			if in.DeadLetterConfig.TargetArn != "" {
				c.DeadLetterConfig = in.DeadLetterConfig
			}
		}
		if in.FileSystemConfigs != nil {
			c.FileSystemConfigs = *in.FileSystemConfigs
			if len(c.FileSystemConfigs) == 0 {
				c.FileSystemConfigs = nil
			}
		}
		if in.Layers != nil && !g.setLayers(w, c, *in.Layers) {
			return
		}
		reply(w, c)
	})
	fn("GET /2020-06-30/functions/{name}/code-signing-config", func(w http.ResponseWriter, r *http.Request, name string) {
		out := lambda.FunctionCodeSigningConfig{FunctionName: name}
		if id := g.signing[name]; id != "" {
			out.CodeSigningConfigArn = lambda.CodeSigningConfigARN(region, id)
		}
		reply(w, out)
	})
	fn("PUT /2020-06-30/functions/{name}/code-signing-config", func(w http.ResponseWriter, r *http.Request, name string) {
		var in lambda.FunctionCodeSigningConfig
		_ = json.NewDecoder(r.Body).Decode(&in)
		id, _ := lambda.ParseCodeSigningConfigARN(in.CodeSigningConfigArn)
		if g.cscs[id] == nil {
			lambdaError(w, 404, "CodeSigningConfigNotFoundException", "no "+id)
			return
		}
		g.signing[name] = id
		reply(w, in)
	})
	fn("DELETE /2020-06-30/functions/{name}/code-signing-config", func(w http.ResponseWriter, r *http.Request, name string) {
		delete(g.signing, name)
		w.WriteHeader(204)
	})
	csc := func(pattern string, h func(w http.ResponseWriter, r *http.Request, id string)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			id, _ := lambda.ParseCodeSigningConfigARN(r.PathValue("arn"))
			if g.cscs[id] == nil {
				lambdaError(w, 404, "CodeSigningConfigNotFoundException", "no "+id)
				return
			}
			h(w, r, id)
		})
	}
	setCSC := func(c *lambda.CodeSigningConfig, in *lambda.CodeSigningConfigInput) {
		if in.AllowedPublishers != nil {
			c.AllowedPublishers = *in.AllowedPublishers
		}
		if in.CodeSigningPolicies != nil {
			c.CodeSigningPolicies = *in.CodeSigningPolicies
		}
		if in.Description != nil {
			c.Description = *in.Description
		}
	}
	mux.HandleFunc("POST /2020-04-22/code-signing-configs/{$}", func(w http.ResponseWriter, r *http.Request) {
		var in lambda.CodeSigningConfigInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		id := structs.CodeSigningConfigID(in.GatewayName)
		c := &lambda.CodeSigningConfig{CodeSigningConfigId: id, CodeSigningConfigArn: lambda.CodeSigningConfigARN(region, id), GatewayName: in.GatewayName}
		setCSC(c, &in)
		g.cscs[id] = c
		w.WriteHeader(201)
		reply(w, lambda.CodeSigningConfigOutput{CodeSigningConfig: *c})
	})
	mux.HandleFunc("GET /2020-04-22/code-signing-configs/{$}", func(w http.ResponseWriter, r *http.Request) {
		out := lambda.ListCodeSigningConfigsOutput{CodeSigningConfigs: []lambda.CodeSigningConfig{}}
		for _, c := range g.cscs {
			out.CodeSigningConfigs = append(out.CodeSigningConfigs, *c)
		}
		reply(w, out)
	})
	csc("GET /2020-04-22/code-signing-configs/{arn}", func(w http.ResponseWriter, r *http.Request, id string) {
		reply(w, lambda.CodeSigningConfigOutput{CodeSigningConfig: *g.cscs[id]})
	})
	csc("PUT /2020-04-22/code-signing-configs/{arn}", func(w http.ResponseWriter, r *http.Request, id string) {
		var in lambda.CodeSigningConfigInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		setCSC(g.cscs[id], &in)
		reply(w, lambda.CodeSigningConfigOutput{CodeSigningConfig: *g.cscs[id]})
	})
	csc("DELETE /2020-04-22/code-signing-configs/{arn}", func(w http.ResponseWriter, r *http.Request, id string) {
		delete(g.cscs, id)
		w.WriteHeader(204)
	})
	mux.HandleFunc("HEAD /v1/code/{sha}", func(w http.ResponseWriter, r *http.Request) {
		if !g.code[r.PathValue("sha")] {
			w.WriteHeader(404)
		}
	})
	fn("POST /2015-03-31/functions/{name}/versions", func(w http.ResponseWriter, r *http.Request, name string) {
		g.versions[name]++
		c := *g.fns[name]
		c.Version = strconv.Itoa(g.versions[name])
		w.WriteHeader(201)
		reply(w, c)
	})
	fn("GET /2019-09-30/functions/{name}/concurrency", func(w http.ResponseWriter, r *http.Request, name string) {
		var out lambda.Concurrency
		if n, ok := g.reserved[name]; ok {
			out.ReservedConcurrentExecutions = &n
		}
		reply(w, out)
	})
	fn("PUT /2017-10-31/functions/{name}/concurrency", func(w http.ResponseWriter, r *http.Request, name string) {
		var in lambda.Concurrency
		_ = json.NewDecoder(r.Body).Decode(&in)
		g.reserved[name] = *in.ReservedConcurrentExecutions
		reply(w, in)
	})
	fn("DELETE /2017-10-31/functions/{name}/concurrency", func(w http.ResponseWriter, r *http.Request, name string) {
		delete(g.reserved, name)
		w.WriteHeader(204)
	})
	fn("GET /2015-03-31/functions/{name}/aliases", func(w http.ResponseWriter, r *http.Request, name string) {
		out := lambda.ListAliasesOutput{Aliases: []lambda.AliasConfiguration{}}
		for _, a := range g.aliases[name] {
			out.Aliases = append(out.Aliases, a)
		}
		sort.Slice(out.Aliases, func(i, j int) bool { return out.Aliases[i].Name < out.Aliases[j].Name })
		reply(w, out)
	})
	putAlias := func(w http.ResponseWriter, r *http.Request, name string) {
		var in lambda.AliasInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		if alias := r.PathValue("alias"); alias != "" {
			in.Name = alias
		}
		a := lambda.AliasConfiguration{Name: in.Name, FunctionVersion: in.FunctionVersion, RoutingConfig: in.RoutingConfig}
		if in.Description != nil {
			a.Description = *in.Description
		}
		if g.aliases[name] == nil {
			g.aliases[name] = map[string]lambda.AliasConfiguration{}
		}
		g.aliases[name][in.Name] = a
		reply(w, a)
	}
	fn("POST /2015-03-31/functions/{name}/aliases", putAlias)
	fn("PUT /2015-03-31/functions/{name}/aliases/{alias}", putAlias)
	fn("DELETE /2015-03-31/functions/{name}/aliases/{alias}", func(w http.ResponseWriter, r *http.Request, name string) {
		delete(g.aliases[name], r.PathValue("alias"))
		w.WriteHeader(204)
	})
	fn("GET /2019-09-30/functions/{name}/provisioned-concurrency", func(w http.ResponseWriter, r *http.Request, name string) {
		if r.URL.Query().Get("List") == "ALL" {
			out := lambda.ListProvisionedConcurrencyConfigsOutput{ProvisionedConcurrencyConfigs: []lambda.ProvisionedConcurrencyConfig{}}
			for q, n := range g.provisioned[name] {
				out.ProvisionedConcurrencyConfigs = append(out.ProvisionedConcurrencyConfigs, lambda.ProvisionedConcurrencyConfig{
					FunctionArn: lambda.FunctionARN(region, name, q), RequestedProvisionedConcurrentExecutions: n})
			}
			reply(w, out)
			return
		}
		n, ok := g.provisioned[name][r.URL.Query().Get("Qualifier")]
		if !ok {
			lambdaError(w, 404, "ProvisionedConcurrencyConfigNotFoundException", "No Provisioned Concurrency Config found")
			return
		}
		reply(w, lambda.ProvisionedConcurrencyConfig{RequestedProvisionedConcurrentExecutions: n, AvailableProvisionedConcurrentExecutions: n,
			Status: lambda.ProvisionedReady})
	})
	fn("PUT /2019-09-30/functions/{name}/provisioned-concurrency", func(w http.ResponseWriter, r *http.Request, name string) {
		var in lambda.ProvisionedConcurrencyInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		if g.provisioned[name] == nil {
			g.provisioned[name] = map[string]int{}
		}
		g.provisioned[name][r.URL.Query().Get("Qualifier")] = *in.ProvisionedConcurrentExecutions
		reply(w, lambda.ProvisionedConcurrencyConfig{Status: lambda.ProvisionedInProgress})
	})
	fn("DELETE /2019-09-30/functions/{name}/provisioned-concurrency", func(w http.ResponseWriter, r *http.Request, name string) {
		delete(g.provisioned[name], r.URL.Query().Get("Qualifier"))
		w.WriteHeader(204)
	})
	fn("GET /2021-10-31/functions/{name}/urls", func(w http.ResponseWriter, r *http.Request, name string) {
		var out struct{ FunctionUrlConfigs []lambda.FunctionURLConfig } //nolint:revive // Lambda's field name
		out.FunctionUrlConfigs = []lambda.FunctionURLConfig{}
		for _, u := range g.urls[name] {
			out.FunctionUrlConfigs = append(out.FunctionUrlConfigs, u)
		}
		reply(w, out)
	})
	putURL := func(w http.ResponseWriter, r *http.Request, name string) {
		var in lambda.FunctionURLConfigInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		q := r.URL.Query().Get("Qualifier")
		host := name
		if q != "" {
			host += "--" + q
		}
		u := lambda.FunctionURLConfig{FunctionUrl: "http://" + host + ".lambda-url.localhost/", FunctionArn: lambda.FunctionARN(region, name, q),
			AuthType: in.AuthType, InvokeMode: in.InvokeMode, Cors: in.Cors}
		if g.urls[name] == nil {
			g.urls[name] = map[string]lambda.FunctionURLConfig{}
		}
		g.urls[name][q] = u
		if r.Method == "POST" {
			w.WriteHeader(201)
		}
		reply(w, u)
	}
	fn("POST /2021-10-31/functions/{name}/url", putURL)
	fn("PUT /2021-10-31/functions/{name}/url", putURL)
	fn("DELETE /2021-10-31/functions/{name}/url", func(w http.ResponseWriter, r *http.Request, name string) {
		delete(g.urls[name], r.URL.Query().Get("Qualifier"))
		w.WriteHeader(204)
	})
	fn("GET /2019-09-25/functions/{name}/event-invoke-config/list", func(w http.ResponseWriter, r *http.Request, name string) {
		out := lambda.ListFunctionEventInvokeConfigsOutput{FunctionEventInvokeConfigs: []lambda.FunctionEventInvokeConfig{}}
		for _, c := range g.asyncs[name] {
			out.FunctionEventInvokeConfigs = append(out.FunctionEventInvokeConfigs, c)
		}
		sort.Slice(out.FunctionEventInvokeConfigs, func(i, j int) bool {
			return out.FunctionEventInvokeConfigs[i].FunctionArn < out.FunctionEventInvokeConfigs[j].FunctionArn
		})
		reply(w, out)
	})
	fn("PUT /2019-09-25/functions/{name}/event-invoke-config", func(w http.ResponseWriter, r *http.Request, name string) {
		var in lambda.EventInvokeConfigInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		q := r.URL.Query().Get("Qualifier")
		if q == "" {
			q = "$LATEST"
		}
		c := lambda.FunctionEventInvokeConfig{FunctionArn: lambda.FunctionARN(region, name, q), MaximumRetryAttempts: in.MaximumRetryAttempts,
			MaximumEventAgeInSeconds: in.MaximumEventAgeInSeconds, DestinationConfig: &lambda.DestinationConfig{OnSuccess: &lambda.Destination{}, OnFailure: &lambda.Destination{}}}
		if dc := in.DestinationConfig; dc != nil {
			if dc.OnSuccess != nil {
				c.DestinationConfig.OnSuccess = dc.OnSuccess
			}
			if dc.OnFailure != nil {
				c.DestinationConfig.OnFailure = dc.OnFailure
			}
		}
		if g.asyncs[name] == nil {
			g.asyncs[name] = map[string]lambda.FunctionEventInvokeConfig{}
		}
		g.asyncs[name][q] = c
		reply(w, c)
	})
	fn("DELETE /2019-09-25/functions/{name}/event-invoke-config", func(w http.ResponseWriter, r *http.Request, name string) {
		delete(g.asyncs[name], r.URL.Query().Get("Qualifier"))
		w.WriteHeader(204)
	})
	fn("GET /v1/functions/{name}/triggers", func(w http.ResponseWriter, r *http.Request, name string) {
		out := struct{ Triggers []*structs.Trigger }{Triggers: []*structs.Trigger{}}
		for _, t := range g.triggers[name] {
			out.Triggers = append(out.Triggers, t)
		}
		sort.Slice(out.Triggers, func(i, j int) bool { return out.Triggers[i].Name < out.Triggers[j].Name })
		reply(w, out)
	})
	fn("PUT /v1/functions/{name}/triggers/{trigger}", func(w http.ResponseWriter, r *http.Request, name string) {
		var t structs.Trigger
		_ = json.NewDecoder(r.Body).Decode(&t)
		t.Function, t.Name, t.UUID, t.LastModified = name, r.PathValue("trigger"), "uuid-"+r.PathValue("trigger"), time.Now()
		if g.triggers[name] == nil {
			g.triggers[name] = map[string]*structs.Trigger{}
		}
		g.triggers[name][t.Name] = &t
		reply(w, &t)
	})
	fn("DELETE /v1/functions/{name}/triggers/{trigger}", func(w http.ResponseWriter, r *http.Request, name string) {
		delete(g.triggers[name], r.PathValue("trigger"))
		w.WriteHeader(204)
	})
	mux.HandleFunc("POST /2018-10-31/layers/{layer}/versions", func(w http.ResponseWriter, r *http.Request) {
		var in lambda.PublishLayerVersionInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		var c lambda.FunctionConfiguration
		if !g.setCode(w, &c, in.Content.ZipFile, in.Content.GatewayCodeSha256) {
			return
		}
		name := r.PathValue("layer")
		v := g.publishLayer(name, c.CodeSha256, c.CodeSize)
		v.Description, v.CompatibleRuntimes, v.CompatibleArchitectures, v.LicenseInfo = in.Description,
			in.CompatibleRuntimes, in.CompatibleArchitectures, in.LicenseInfo
		w.WriteHeader(201)
		reply(w, v)
	})
	mux.HandleFunc("GET /2018-10-31/layers/{layer}/versions", func(w http.ResponseWriter, r *http.Request) {
		out := lambda.ListLayerVersionsOutput{LayerVersions: []lambda.LayerVersionsListItem{}}
		vs := g.layers[r.PathValue("layer")]
		for i := len(vs) - 1; i >= 0; i-- {
			v := vs[i]
			out.LayerVersions = append(out.LayerVersions, lambda.LayerVersionsListItem{LayerVersionArn: v.LayerVersionArn, Version: v.Version,
				Description: v.Description, CompatibleRuntimes: v.CompatibleRuntimes, CompatibleArchitectures: v.CompatibleArchitectures, LicenseInfo: v.LicenseInfo})
		}
		reply(w, out)
	})
	mux.HandleFunc("GET /2018-10-31/layers/{layer}/versions/{version}", func(w http.ResponseWriter, r *http.Request) {
		v, err := strconv.Atoi(r.PathValue("version"))
		vs := g.layers[r.PathValue("layer")]
		if err != nil || v < 1 || v > len(vs) {
			lambdaError(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		reply(w, vs[v-1])
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if r.Method != "GET" && r.Method != "HEAD" {
			line := r.Method + " " + r.URL.Path
			if r.URL.RawQuery != "" {
				line += "?" + r.URL.RawQuery
			}
			g.writes = append(g.writes, line)
		}
		if g.fail[r.Method+" "+r.URL.Path] {
			lambdaError(w, 400, "InvalidParameterValueException", "injected failure")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// setCode gives c the code of a create or update: the zip, or a zip the agent holds.
func (g *fakeAgent) setCode(w http.ResponseWriter, c *lambda.FunctionConfiguration, zip []byte, held string) bool {
	if held != "" {
		if !g.code[held] {
			lambdaError(w, 400, "InvalidParameterValueException", "no code "+held)
			return false
		}
		b, _ := hex.DecodeString(held)
		c.CodeSha256 = base64.StdEncoding.EncodeToString(b)
		return true
	}
	h, b64 := codeSha(zip)
	g.code[h] = true
	c.CodeSha256, c.CodeSize = b64, int64(len(zip))
	return true
}

// publishLayer adds the next version of a layer, of the code with that base64 SHA-256.
func (g *fakeAgent) publishLayer(name, codeSha256 string, size int64) *lambda.LayerVersionOutput {
	n := int64(len(g.layers[name]) + 1)
	v := &lambda.LayerVersionOutput{LayerArn: lambda.LayerARN(region, name, 0),
		LayerVersionsListItem: lambda.LayerVersionsListItem{LayerVersionArn: lambda.LayerARN(region, name, n), Version: n},
		Content:               &lambda.LayerContentOutput{CodeSha256: codeSha256, CodeSize: size}}
	g.layers[name] = append(g.layers[name], v)
	return v
}

// setLayers gives c the layer versions the ARNs name, which must exist.
func (g *fakeAgent) setLayers(w http.ResponseWriter, c *lambda.FunctionConfiguration, arns []string) bool {
	c.Layers = nil
	for _, arn := range arns {
		_, name, v, err := lambda.ParseLayerVersionARN(arn)
		if err != nil || v > int64(len(g.layers[name])) {
			lambdaError(w, 400, "InvalidParameterValueException", "Layer version "+arn+" does not exist.")
			return false
		}
		c.Layers = append(c.Layers, lambda.FunctionLayer{Arn: arn, CodeSize: g.layers[name][v-1].Content.CodeSize})
	}
	return true
}
