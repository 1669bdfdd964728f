package main

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lambdagw/gateway/integration/nodeimage"
)

// craneModule is the crane the module proxy serves, of the go-containerregistry release the
// gateway uses; the image rows install it into .tools/bin when missing.
const craneModule = "github.com/google/go-containerregistry/cmd/crane@v0.22.1"

// imagesOpts are the flags of the image rows.
type imagesOpts struct {
	rounds  int           // pulls of the large image by crane and by the gateway, alternating
	cold    int           // cold starts of each Node.js form
	sizeMB  int           // size of the large image (compressed, as pulled)
	envs    int           // concurrent environments of one image function for the disk row
	warmDur time.Duration // each wrk run of the warm rows
}

var imagesOpt imagesOpts

// ensureTool returns .tools/bin/<name>, installing module there with go install when missing.
func ensureTool(name, module string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(wd, ".tools", "bin")
	path := filepath.Join(bin, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Printf("installing %s into %s\n", module, bin)
	cmd := exec.Command("go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("installing %s: %v\n%s", module, err, b)
	}
	return path, nil
}

// countingRegistry is an OCI registry (go-containerregistry's) that counts the blob bytes it
// serves, to tell what a pull fetched.
type countingRegistry struct {
	h     http.Handler
	bytes atomic.Int64
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

func (c *countingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		w = countingWriter{w, &c.bytes}
	}
	c.h.ServeHTTP(w, r)
}

// randomLayer is a layer of one file of n incompressible bytes at path.
func randomLayer(path string, n int) (v1.Layer, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return nodeimage.TarLayer(map[string][]byte{path: b}, nil, nil)
}

// imageSize is what pulling img fetches: its layers, compressed, and its config.
func imageSize(img v1.Image) (int64, error) {
	ls, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range ls {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		n += s
	}
	cfg, err := img.RawConfigFile()
	return n + int64(len(cfg)), err
}

// createFunction posts a CreateFunction body and times it (an image function's deploy pulls and
// unpacks its image before answering).
func (a *benchAgent) createFunction(client *http.Client, body any) (time.Duration, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	resp, err := client.Post(a.base+"/2015-03-31/functions", "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return 0, fmt.Errorf("CreateFunction: %s %s", resp.Status, out)
	}
	return time.Since(t0), nil
}

// cold updates fn's configuration (a new revision) and times its next call, once its standby
// environment is ready when waitStandby.
func (a *benchAgent) cold(client *http.Client, fn, run string, waitStandby bool, payload []byte) (time.Duration, error) {
	req, _ := http.NewRequest("PUT", a.base+"/2015-03-31/functions/"+fn+"/configuration",
		strings.NewReader(fmt.Sprintf(`{"Environment":{"Variables":{"RUN":%q}}}`, run)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	var conf struct{ RevisionId string }
	err = jsonDecode(resp, &conf)
	if resp.StatusCode != 200 || err != nil {
		return 0, fmt.Errorf("updating the configuration of %s: %s %v", fn, resp.Status, err)
	}
	if waitStandby {
		if err := waitForStandby(client, a.base, fn, conf.RevisionId); err != nil {
			return 0, err
		}
	}
	return call(client, a.base+"/2015-03-31/functions/"+fn+"/invocations", payload)
}

// fsUsed is the bytes in use on the file system holding dir.
func fsUsed(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, nil
}

// duBytes is what du counts in dir, not crossing into other file systems.
func duBytes(dir string) (int64, error) {
	out, err := exec.Command("du", "-sxb", dir).Output()
	if err != nil {
		return 0, fmt.Errorf("du %s: %w", dir, err)
	}
	var n int64
	_, err = fmt.Sscan(string(out), &n)
	return n, err
}

// benchImages measures the Node.js handler (npm's aws-lambda-ric on this machine's node) as a
// container image, as a zip on a managed runtime and with its dependency in a layer, against
// the AWS RIE running the same handler with the same runtime client; the first deploy of a large
// image against crane pulling it from the same registry; and the disk many environments of one
// image take.
func benchImages(client *http.Client, gwBin, tmp, driver string, o imagesOpts) ([]string, error) {
	rie, err := ensureRIE()
	if err != nil {
		return nil, err
	}
	crane, err := ensureTool("crane", craneModule)
	if err != nil {
		return nil, err
	}
	ric, err := nodeimage.RICModules(".")
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("the image rows need node: %w", err)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()

	// The images, in a registry served by this process.
	reg := &countingRegistry{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	push := func(ref string, img v1.Image) error {
		r, err := name.ParseReference(host + "/" + ref)
		if err != nil {
			return err
		}
		return remote.Write(r, img)
	}
	base, err := nodeimage.Layers(".")
	if err != nil {
		return nil, err
	}
	handlerLayer, err := nodeimage.TarLayer(map[string][]byte{"var/task/index.js": []byte(nodeimage.Handler)}, nil, nil)
	if err != nil {
		return nil, err
	}
	fnImg, err := nodeimage.ImageOf(append(append([]v1.Layer(nil), base...), handlerLayer),
		v1.Config{Entrypoint: nodeimage.Entrypoint, Cmd: []string{"index.handler"}, WorkingDir: "/var/task", Env: nodeimage.Env})
	if err != nil {
		return nil, err
	}
	rtImg, err := nodeimage.ImageOf(base, v1.Config{Entrypoint: nodeimage.Entrypoint, Env: nodeimage.Env})
	if err != nil {
		return nil, err
	}
	// The large image: the Node.js base and incompressible layers up to sizeMB, then the handler;
	// a second image on the same base differs in its top layer only.
	baseSize, err := imageSize(rtImg)
	if err != nil {
		return nil, err
	}
	fill := int64(o.sizeMB)<<20 - baseSize
	big := append([]v1.Layer(nil), base...)
	for i := 0; fill > 0 && i < 2; i++ {
		l, err := randomLayer(fmt.Sprintf("opt/data/part%d", i), int(fill/2))
		if err != nil {
			return nil, err
		}
		big = append(big, l)
	}
	bigImg, err := nodeimage.ImageOf(append(append([]v1.Layer(nil), big...), handlerLayer),
		v1.Config{Entrypoint: nodeimage.Entrypoint, Cmd: []string{"index.handler"}, WorkingDir: "/var/task", Env: nodeimage.Env})
	if err != nil {
		return nil, err
	}
	otherTop, err := nodeimage.TarLayer(map[string][]byte{"var/task/index.js": []byte(nodeimage.Handler + "// the second function\n")}, nil, nil)
	if err != nil {
		return nil, err
	}
	big2Img, err := nodeimage.ImageOf(append(append([]v1.Layer(nil), big...), otherTop),
		v1.Config{Entrypoint: nodeimage.Entrypoint, Cmd: []string{"index.handler"}, WorkingDir: "/var/task", Env: nodeimage.Env})
	if err != nil {
		return nil, err
	}
	for ref, img := range map[string]v1.Image{"bench/node-fn:1": fnImg, "bench/node-runtime:20": rtImg, "bench/big:1": bigImg, "bench/big:2": big2Img} {
		if err := push(ref, img); err != nil {
			return nil, fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	bigSize, err := imageSize(bigImg)
	if err != nil {
		return nil, err
	}
	topSize, err := otherTop.Size()
	if err != nil {
		return nil, err
	}
	imageFn := func(fn, ref string) map[string]any {
		return map[string]any{"FunctionName": fn, "Role": "arn:aws:iam::000000000000:role/bench", "PackageType": "Image",
			"Code": map[string]any{"ImageUri": host + "/" + ref}, "MemorySize": 128, "Timeout": 120}
	}

	// First deploys of the large image against crane, alternating, each on an empty store.
	var cranePulls, firstDeploys, secondDeploys []time.Duration
	var secondBytes int64
	var files int
	var createCost time.Duration
	for i := 0; i < o.rounds; i++ {
		dir := filepath.Join(tmp, "crane-pull")
		_ = os.RemoveAll(dir)
		t0 := time.Now()
		cmd, err := startPinned(devNull, crane, "pull", "--format", "oci", "--insecure", host+"/bench/big:1", dir)
		if err != nil {
			return nil, err
		}
		if err := cmd.Wait(); err != nil {
			return nil, fmt.Errorf("crane pull: %w", err)
		}
		cranePulls = append(cranePulls, time.Since(t0))
		_ = os.RemoveAll(dir)

		a, err := startBenchAgent(client, gwBin, tmp, "images", driver, fmt.Sprintf("registry %q {\n  insecure = true\n}\n", host))
		if err != nil {
			return nil, err
		}
		d, err := a.createFunction(client, imageFn("big1", "bench/big:1"))
		if err != nil {
			a.stop()
			return nil, fmt.Errorf("first deploy of the large image: %w", err)
		}
		firstDeploys = append(firstDeploys, d)
		before := reg.bytes.Load()
		d, err = a.createFunction(client, imageFn("big2", "bench/big:2"))
		if err != nil {
			a.stop()
			return nil, fmt.Errorf("deploy of a second image on the same base: %w", err)
		}
		secondDeploys = append(secondDeploys, d)
		secondBytes = reg.bytes.Load() - before
		a.stop()
		if i == 0 {
			if files, err = countFiles(filepath.Join(a.dataDir, "images", "layers")); err != nil {
				return nil, err
			}
			if createCost, err = createFiles(a.dataDir, files); err != nil {
				return nil, err
			}
		}
		fmt.Printf("images: round %d: crane pull %.2f s, first deploy %.2f s, second %.0f ms (%d bytes fetched)\n",
			i+1, cranePulls[i].Seconds(), firstDeploys[i].Seconds(), ms(secondDeploys[i]), secondBytes)
	}

	// The Node.js handler three ways on one agent, and through RIE.
	depZip, err := zipFiles(map[string]string{
		"nodejs/node_modules/greeter/package.json": `{"name":"greeter","version":"1.0.0","main":"index.js"}`,
		"nodejs/node_modules/greeter/index.js":     "exports.greet = (name) => `Hello, ${name}!`;\n",
	})
	if err != nil {
		return nil, err
	}
	handlerZip, err := zipFiles(map[string]string{"index.js": nodeimage.Handler})
	if err != nil {
		return nil, err
	}
	depHandler := strings.Replace(nodeimage.Handler, `"Hello, " + event.name + "!"`, `require("greeter").greet(event.name)`, 1)
	depHandlerZip, err := zipFiles(map[string]string{"index.js": depHandler})
	if err != nil {
		return nil, err
	}
	a, err := startBenchAgent(client, gwBin, tmp, "nodeimg", driver,
		fmt.Sprintf("registry %q {\n  insecure = true\n}\nruntime \"nodejs20.x\" {\n  image = %q\n}\n", host, host+"/bench/node-runtime:20"))
	if err != nil {
		return nil, err
	}
	defer a.stop()
	if _, err := a.createFunction(client, imageFn("nodeimg", "bench/node-fn:1")); err != nil {
		return nil, err
	}
	zipFn := func(fn string, code []byte, layers []string) map[string]any {
		return map[string]any{"FunctionName": fn, "Role": "arn:aws:iam::000000000000:role/bench", "Runtime": "nodejs20.x",
			"Handler": "index.handler", "Code": map[string]any{"ZipFile": code}, "MemorySize": 128, "Timeout": 120, "Layers": layers}
	}
	var layer struct{ LayerVersionArn string }
	lb, _ := json.Marshal(map[string]any{"Content": map[string]any{"ZipFile": depZip}})
	if err := apiCall(client, "POST", a.base+"/2018-10-31/layers/greeter/versions", string(lb), &layer); err != nil {
		return nil, fmt.Errorf("publishing the layer: %w", err)
	}
	// The runtime's image is pulled as the agent starts; a zip function on it waits for that.
	if err := waitRuntime(client, a.base, "nodejs20.x"); err != nil {
		return nil, err
	}
	if _, err := a.createFunction(client, zipFn("nodezip", handlerZip, nil)); err != nil {
		return nil, err
	}
	if _, err := a.createFunction(client, zipFn("nodelayer", depHandlerZip, []string{layer.LayerVersionArn})); err != nil {
		return nil, err
	}
	payload := []byte(`{"name":"bench"}`)
	taskDir := filepath.Join(tmp, "rie-task")
	if err := os.MkdirAll(taskDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(taskDir, "index.js"), []byte(nodeimage.Handler), 0o644); err != nil {
		return nil, err
	}
	startRIE := func(addr string) (*exec.Cmd, error) {
		cmd := exec.Command("taskset", "-c", fmt.Sprint(serverCPU), rie, "--log-level", "error",
			"--runtime-interface-emulator-address", addr, "--runtime-api-address", freeAddr(),
			node, filepath.Join(ric, "aws-lambda-ric", "bin", "index.mjs"), "index.handler")
		cmd.Dir = taskDir
		cmd.Env = append(os.Environ(), "LAMBDA_TASK_ROOT="+taskDir, "NODE_PATH="+ric)
		cmd.Stdout, cmd.Stderr = devNull, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd, cmd.Start()
	}
	rieURL := func(addr string) string { return "http://" + addr + "/2015-03-31/functions/function/invocations" }
	gwFns := []string{"nodeimg", "nodezip", "nodelayer"}
	cold := map[string][]time.Duration{}
	for i := 0; i < o.cold; i++ {
		addr := freeAddr()
		t0 := time.Now()
		cmd, err := startRIE(addr)
		if err != nil {
			return nil, err
		}
		err = waitPort(addr, 10*time.Second)
		if err == nil {
			c := &http.Client{Transport: &http.Transport{}}
			_, err = call(c, rieURL(addr), payload)
			c.CloseIdleConnections()
		}
		stopProc(cmd)
		if err != nil {
			return nil, fmt.Errorf("RIE cold start: %w", err)
		}
		cold["rie"] = append(cold["rie"], time.Since(t0))
		for _, fn := range gwFns {
			for _, ready := range []bool{false, true} {
				d, err := a.cold(client, fn, fmt.Sprintf("%d-%t", i, ready), ready, payload)
				if err != nil {
					return nil, fmt.Errorf("cold start of %s: %w", fn, err)
				}
				cold[fmt.Sprintf("%s-%t", fn, ready)] = append(cold[fmt.Sprintf("%s-%t", fn, ready)], d)
			}
		}
	}
	for _, d := range cold {
		sortDur(d)
	}

	// Warm calls, one caller: RIE and the image function, taking turns.
	rieAddr := freeAddr()
	rieCmd, err := startRIE(rieAddr)
	if err != nil {
		return nil, err
	}
	defer stopProc(rieCmd)
	if err := waitPort(rieAddr, 10*time.Second); err != nil {
		return nil, err
	}
	script := filepath.Join(tmp, "node.lua")
	if err := os.WriteFile(script, []byte("wrk.method = \"POST\"\nwrk.body = '"+string(payload)+"'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"), 0o644); err != nil {
		return nil, err
	}
	noCPU := func() (time.Duration, error) { return 0, nil }
	var warmRIE, warmGW []wrkResult
	for r := 0; r < 3; r++ {
		w, err := runWrk(script, rieURL(rieAddr), 1, 1, o.warmDur, noCPU)
		if err != nil {
			return nil, err
		}
		warmRIE = append(warmRIE, w)
		w, err = runWrk(script, a.base+"/2015-03-31/functions/nodeimg/invocations", 1, 1, o.warmDur, noCPU)
		if err != nil {
			return nil, err
		}
		warmGW = append(warmGW, w)
	}
	medianP50 := func(rs []wrkResult) time.Duration {
		d := make([]time.Duration, 0, len(rs))
		for _, r := range rs {
			d = append(d, r.p50)
		}
		return medianDur(d)
	}

	// Many environments of one image function at once, each holding its invocation: the disk
	// they take beside the image's one copy.
	usedBefore, err := fsUsed(a.dataDir)
	if err != nil {
		return nil, err
	}
	storeSize, err := duBytes(filepath.Join(a.dataDir, "images"))
	if err != nil {
		return nil, err
	}
	inUse, fnIdle, err := envCounts(client, a.base, "nodeimg")
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, o.envs)
	// Long enough for every environment to start (on one CPU) before the first one is done.
	hold := []byte(`{"name":"hold","sleepMs":60000}`)
	for i := 0; i < o.envs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := call(client, a.base+"/2015-03-31/functions/nodeimg/invocations", hold); err != nil {
				errs <- err
			}
		}()
	}
	running, err := waitBusy(client, a.base, "nodeimg", inUse-fnIdle, o.envs, 3*time.Minute, errs)
	usedDuring, ferr := fsUsed(a.dataDir)
	wg.Wait()
	close(errs)
	if err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, ferr
	}
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("holding %d environments: %w", o.envs, err)
	}

	var b strings.Builder
	b.WriteString("## Container images, managed runtimes and layers (Node.js)\n\n")
	fmt.Fprintf(&b, "Measured by `%s` on the same machine. One unmodified Node.js handler\n", commandLine())
	b.WriteString("(`integration/nodeimage`) under npm's aws-lambda-ric on this machine's node, four ways: through the AWS\n")
	b.WriteString("Lambda RIE (`aws-lambda-rie` running node and the same runtime client as its child, no sandbox), and on the gateway\n")
	b.WriteString("as a container image from a registry, as a zip on a managed runtime (`runtime \"nodejs20.x\"` naming an image of\n")
	b.WriteString("node and the runtime client), and as that zip with its dependency moved into a layer at `/opt`. The agent, RIE\n")
	b.WriteString("and crane run on CPU 1, wrk on CPU 0; the registry is go-containerregistry's, in the bench process. A cold start\n")
	b.WriteString("is RIE's process start to its first response, and on the gateway a configuration update (a new revision) then\n")
	b.WriteString("the next call, sent at once or once the node's standby environment for the revision is ready. MB = 2^20 bytes.\n\n")
	b.WriteString("| measure | gateway | RIE / crane | target |\n|---|---|---|---|\n")
	rieCold := pct(cold["rie"], 50)
	for _, fn := range gwFns {
		label := map[string]string{"nodeimg": "container image", "nodezip": "zip on nodejs20.x", "nodelayer": "zip on nodejs20.x, dependency in a layer"}[fn]
		now, ready := pct(cold[fn+"-false"], 50), pct(cold[fn+"-true"], 50)
		fmt.Fprintf(&b, "| cold start p50, %s (%d runs) | %.1f ms (%+.1f ms); standby ready %.1f ms (%+.1f ms) | %.1f ms | <= +10 ms over RIE |\n",
			label, o.cold, ms(now), ms(now-rieCold), ms(ready), ms(ready-rieCold), ms(rieCold))
	}
	gwWarm, rieWarm := medianP50(warmGW), medianP50(warmRIE)
	fmt.Fprintf(&b, "| warm call p50, container image, 1 caller (wrk, 3 x %s, median) | %.0f µs (%+.0f µs) | %.0f µs | reported |\n",
		o.warmDur, us(gwWarm), us(gwWarm-rieWarm), us(rieWarm))
	sortDur(cranePulls)
	sortDur(firstDeploys)
	sortDur(secondDeploys)
	fmt.Fprintf(&b, "| first deploy of a %.0f MB image (pull and unpack; median of %d, each on an empty store) | %.2f s (%.2fx) | crane pull %.2f s | <= 1.3x |\n",
		b2mb(bigSize), o.rounds, medianDur(firstDeploys).Seconds(), medianDur(firstDeploys).Seconds()/medianDur(cranePulls).Seconds(), medianDur(cranePulls).Seconds())
	fmt.Fprintf(&b, "| what bounds the first deploy: creating the image's %d files, as empty files, on the same file system | %.2f s (%.0f µs a file) | crane writes %d blobs | |\n",
		files, createCost.Seconds(), us(createCost)/float64(max(files, 1)), len(big)+2)
	fmt.Fprintf(&b, "| deploy of a second image on the same base (only its %.1f kB top layer differs) | %.0f ms, %.1f kB fetched | | pulls nothing of the base |\n",
		float64(topSize)/1024, ms(medianDur(secondDeploys)), float64(secondBytes)/1024)
	fmt.Fprintf(&b, "| disk of %d environments of the image function at once (file system in use, before and during) | %+.1f MB; the image store holds %.1f MB | | one copy of the image plus /tmp (a tmpfs) |\n",
		running, b2mb(usedDuring-usedBefore), b2mb(storeSize))
	return []string{b.String()}, nil
}

// countFiles counts the regular files under dir.
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	return n, err
}

// createFiles times creating n empty files (100 a folder) in a fresh folder under dir, the
// file system's own cost of an unpack, and removes them.
func createFiles(dir string, n int) (time.Duration, error) {
	tmp, err := os.MkdirTemp(dir, "create-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		sub := filepath.Join(tmp, fmt.Sprint(i/100))
		if i%100 == 0 {
			if err := os.Mkdir(sub, 0o755); err != nil {
				return 0, err
			}
		}
		f, err := os.OpenFile(filepath.Join(sub, fmt.Sprint(i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return 0, err
		}
		f.Close()
	}
	return time.Since(t0), nil
}

// waitRuntime waits until the node has the image of runtime name.
func waitRuntime(client *http.Client, base, name string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var st struct {
			Runtimes []struct{ Name, Resolved string }
		}
		if err := apiCall(client, "GET", base+"/v1/status", "", &st); err != nil {
			return err
		}
		for _, r := range st.Runtimes {
			if r.Name == name && r.Resolved != "" {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("runtime %s has no image on the node after 2 minutes", name)
}

// envCounts reads /v1/status: the environments in use on the node (busy, idle or frozen; not
// standby) and how many of them are fn's idle or frozen ones (busy ones are not listed).
func envCounts(client *http.Client, base, fn string) (inUse, fnIdle int, err error) {
	var st struct {
		Sandbox      struct{ Environments, Standby int }
		Environments []struct{ Function, State string }
	}
	if err := apiCall(client, "GET", base+"/v1/status", "", &st); err != nil {
		return 0, 0, err
	}
	for _, e := range st.Environments {
		if e.Function == fn && e.State != "standby" {
			fnIdle++
		}
	}
	return st.Sandbox.Environments - st.Sandbox.Standby, fnIdle, nil
}

// waitBusy waits until fn has want environments (beyond the others environments in use that are
// not fn's), and returns how many it has.
func waitBusy(client *http.Client, base, fn string, others, want int, limit time.Duration, failed <-chan error) (int, error) {
	deadline := time.Now().Add(limit)
	n := 0
	for time.Now().Before(deadline) {
		select {
		case err := <-failed:
			return 0, fmt.Errorf("an invocation holding an environment failed: %w", err)
		default:
		}
		inUse, _, err := envCounts(client, base, fn)
		if err != nil {
			return 0, err
		}
		if n = inUse - others; n >= want {
			return n, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n, fmt.Errorf("%d of %d environments of %s in use after %s", n, want, fn, limit)
}

// zipFiles is a zip of files (mode 0644).
func zipFiles(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, body := range files {
		w, err := zw.Create(n)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	err := zw.Close()
	return buf.Bytes(), err
}
