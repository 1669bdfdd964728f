package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium (scripts/deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

const consoleFunction = "console-demo"

// consoleBrowser is a headless Chromium on a real agent with access keys and one function.
type consoleBrowser struct {
	t     *testing.T
	agent *agentProc
	ctx   context.Context
	shots string // where screenshots go (a temp dir; copied to docs/screenshots with UPDATE_SCREENSHOTS=1)
}

func newConsoleBrowser(t *testing.T) *consoleBrowser {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("the console tests need Debian's chromium at %s (make deps installs it): %v", chromiumPath, err)
	}
	natsHCL, _ := natsBlock(t)
	a := startAgent(t, agentOptions{node: "console", top: pluginBlock(t, "queue", pluginBins["queue"], "") + natsHCL, keys: []testKey{
		{"ops", authAdminID, authAdminSecret, "admin"},
		{"app", authInvokeID, authInvokeSecret, "invoke"},
	}})
	fnFile := writeFunctions(t, fmt.Sprintf(`
function %q {
  runtime     = "provided.al2023"
  code        = %q
  memory_mb   = 128
  timeout     = "5s"
  environment = { GREETING = "hi" }
  publish     = true
  reserved_concurrency = 5
  alias "live" {
    version = 1
  }
  url {
    auth_type = "NONE"
  }
  trigger "orders" {
    plugin = "queue"
    source = "orders"
  }
}
`, consoleFunction, fnDir))
	if out, errOut, code := a.cli("apply", fnFile); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	// Chromium runs as root here, which its sandbox refuses: --no-sandbox. The allocator's
	// cancel kills the browser and waits for it, and runs however the test ends.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	// A bound on the whole browser session, so a missing element fails the test instead of
	// hanging it (what the test asserts is what appears, never how fast).
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	return &consoleBrowser{t: t, agent: a, ctx: ctx, shots: t.TempDir()}
}

func (b *consoleBrowser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *consoleBrowser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

func (b *consoleBrowser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// waitText waits until the element sel shows want.
func (b *consoleBrowser) waitText(sel, want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want)
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0))); err != nil {
		got, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||''`, sel)))
		b.t.Fatalf("waiting for %s to show %q: %v; it shows %q", sel, want, err, got)
	}
}

// screenshot saves the whole page as name.png.
func (b *consoleBrowser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		b.t.Fatalf("screenshot %s is not a PNG", name)
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dst := filepath.Join(repoRoot, "docs", "screenshots", name+".png")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// login logs in through the form with secret, which must be the admin key's.
func (b *consoleBrowser) login(secret string) {
	b.t.Helper()
	b.run("logging in",
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SetValue(chromedp.CSS(`#login-id`), authAdminID),
		chromedp.SetValue(chromedp.CSS(`#login-secret`), secret),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
}

// openFunction opens the function's page from the functions list.
func (b *consoleBrowser) openFunction() {
	b.t.Helper()
	b.run("opening the function",
		chromedp.WaitVisible(chromedp.CSS(`#functions-table`)),
		chromedp.Click(chromedp.CSS(`#functions-table a[href="#/functions/`+consoleFunction+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#invoke-form`)))
}

// TestConsole drives the web console in headless Chromium against a real agent: a wrong
// secret is refused on the form, the right one logs in, the function list shows the function,
// its page invokes it from the form and shows the response, the REPORT line and its log lines,
// and the cluster page shows the node as leader.
func TestConsole(t *testing.T) {
	b := newConsoleBrowser(t)
	b.run("opening the console", chromedp.Navigate(b.agent.addr+"/ui/"))

	b.login("not-the-secret")
	b.waitText(`#login-error`, "wrong access key ID or secret access key")
	if !eval[bool](b, `getComputedStyle(document.getElementById('nav')).display === 'none' && getComputedStyle(document.getElementById('who')).display === 'none'`) {
		t.Fatal("the navigation shows before the login")
	}
	b.screenshot("console-login")

	b.login(authAdminSecret)
	b.run("the functions list", chromedp.WaitVisible(chromedp.CSS(`#functions-table`)))
	if got := b.text(`#who-key`); !strings.Contains(got, authAdminID) || !strings.Contains(got, "admin") {
		t.Fatalf("logged in as %q", got)
	}
	// Name, runtime, memory / timeout, versions, aliases, URLs, triggers, reserved concurrency.
	cells := eval[[]string](b, `[...document.querySelectorAll('#functions-table tbody td')].map(td => td.textContent)`)
	if len(cells) != 8 || cells[0] != consoleFunction || cells[1] != "provided.al2023" || cells[2] != "128 MB / 5 s" ||
		cells[3] != "1" || cells[4] != "live → 1" || !strings.HasSuffix(cells[5], "(NONE)") || cells[6] != "orders (queue)" || cells[7] != "5" {
		t.Fatalf("functions list row %q", cells)
	}
	b.screenshot("console-functions")

	b.openFunction()
	if got := b.text(`#function-name`); got != consoleFunction {
		t.Fatalf("function page of %q", got)
	}
	cfg := b.text(`main`)
	if !strings.Contains(cfg, "GREETING") || !strings.Contains(cfg, "arn:aws:lambda:") {
		t.Fatalf("function page lacks its configuration: %q", cfg)
	}
	// Without the metrics endpoint the page says so; with it, charts (TestConsoleMetricsCharts).
	b.run("the metrics section", chromedp.WaitVisible(chromedp.CSS(`#charts figure.chart, #metrics-unavailable`)))

	b.run("invoking from the form",
		chromedp.SetValue(chromedp.CSS(`#invoke-payload`), `{"mode":"log","n":3}`),
		chromedp.Click(chromedp.CSS(`#invoke-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#invoke-result`)))
	if got := b.text(`#invoke-status`); !strings.HasPrefix(got, "Succeeded") {
		t.Fatalf("invoke status %q", got)
	}
	if got := b.text(`#invoke-result`); !strings.Contains(got, `"logged": 3`) {
		t.Fatalf("invoke response %q", got)
	}
	if got := b.text(`#invoke-report`); !strings.HasPrefix(got, "REPORT RequestId:") || !strings.Contains(got, "Duration:") {
		t.Fatalf("REPORT line %q", got)
	}
	if got := b.text(`#invoke-logs`); !strings.Contains(got, "log line 0") || !strings.Contains(got, "log line 2") {
		t.Fatalf("invoke log tail %q", got)
	}
	// The followed log tail shows the invocation's lines as they are written.
	b.waitText(`#log-tail`, "log line 2")
	b.screenshot("console-function")

	b.run("the cluster page", chromedp.Click(chromedp.CSS(`#nav a[data-page=cluster]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nodes-table`)))
	nodes := b.text(`#nodes-table`)
	if !strings.Contains(nodes, "console") || !strings.Contains(nodes, "leader") || !strings.Contains(nodes, b.agent.raftAddr) {
		t.Fatalf("nodes table %q", nodes)
	}
	b.waitText(`#health`, "ok")
	// Each of the node's health checks, with its detail.
	b.waitText(`#health-checks`, "leader console")
	if got := b.text(`#health-checks`); !strings.Contains(got, "raft") || !strings.Contains(got, "sandbox") || !strings.Contains(got, "disk") {
		t.Fatalf("health checks table %q", got)
	}
	b.screenshot("console-cluster")

	b.run("the plugins page", chromedp.Click(chromedp.CSS(`#nav a[data-page=plugins]`)),
		chromedp.WaitVisible(chromedp.CSS(`#async-table`)))
	// The queue plugin runs and serves the function's trigger.
	b.waitText(`#plugins-table`, "running")
	if got := eval[[]string](b, `[...document.querySelectorAll('#plugins-table tbody td')].map(td => td.textContent)`); len(got) < 7 || got[0] != "queue" || got[2] != "running" || got[6] != "1" {
		t.Fatalf("plugins table row %q (want queue, running, 1 mapping)", got)
	}
	if got := b.text(`#async-table`); !strings.Contains(got, consoleFunction) {
		t.Fatalf("async backlogs %q", got)
	}
	b.screenshot("console-plugins")

	b.run("logging out", chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#login-form`)))
	// The session is gone: reloading asks for a login again.
	b.run("reloading", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#login-form`)))
}

// TestConsoleMetricsCharts: the function page draws the last hour of the function's metrics
// (GET /v1/functions/{name}/metrics) as charts, the invocations made from the form included.
func TestConsoleMetricsCharts(t *testing.T) {
	b := newConsoleBrowser(t)
	b.run("opening the console", chromedp.Navigate(b.agent.addr+"/ui/"))
	b.login(authAdminSecret)
	b.openFunction()
	b.run("invoking from the form",
		chromedp.SetValue(chromedp.CSS(`#invoke-payload`), `{"name":"charts"}`),
		chromedp.Click(chromedp.CSS(`#invoke-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#invoke-result`)))
	b.run("the metrics section", chromedp.WaitVisible(chromedp.CSS(`#charts figure.chart, #metrics-unavailable`)))
	if msg := eval[string](b, `(document.getElementById('metrics-unavailable') || {}).textContent || ''`); msg != "" {
		t.Fatalf("the function page shows %q: GET /v1/functions/%s/metrics?minutes=60 must answer the last hour's points", msg, consoleFunction)
	}
	// The page reads the metrics again after an invocation from the form: without reopening it,
	// the charts come to count the one made above.
	b.waitText(`figure[data-chart=invocations] figcaption`, "invocations: 1 in the hour")
	charts := eval[[]string](b, `[...document.querySelectorAll('#charts figure.chart')].map(f => f.dataset.chart)`)
	want := []string{"invocations", "errors", "duration_p50_ms", "throttles", "cold_starts"}
	if strings.Join(charts, ",") != strings.Join(want, ",") {
		t.Fatalf("charts %v, want %v", charts, want)
	}
	// One point per minute of the hour, and the invocation shows above the baseline.
	points := eval[int](b, `document.querySelector('#charts polyline[data-series=invocations]').getAttribute('points').split(' ').length`)
	invocations := eval[float64](b, `(() => { const ys = document.querySelector('#charts polyline[data-series=invocations]').getAttribute('points').split(' ').map(p => +p.split(',')[1]); return Math.max(...ys) - Math.min(...ys); })()`)
	if points != 60 || invocations <= 0 {
		t.Fatalf("invocations chart: %d points, height %v (want 60 points and the invocation drawn)", points, invocations)
	}
	if got := b.text(`figure[data-chart=invocations] figcaption`); !strings.Contains(got, "invocations: 1 in the hour") { // the one invocation from the form
		t.Fatalf("invocations legend %q", got)
	}
	b.screenshot("console-metrics")
}

// TestConsoleSessionAndFunctionURLs: a path-routed function URL (/fn/<id>/) is served on the
// console's own host, so it could see the console's session cookie: the function's event never
// has it, a function cannot set or clear it, and its responses are sandboxed (an opaque origin
// whose scripts cannot call the API with the session).
func TestConsoleSessionAndFunctionURLs(t *testing.T) {
	b := newConsoleBrowser(t)
	a := b.agent
	login, err := http.PostForm(a.addr+"/ui/login", url.Values{"access_key_id": {authAdminID}, "secret_access_key": {authAdminSecret}})
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	var session *http.Cookie
	for _, c := range login.Cookies() {
		if c.Name == "gateway_console" {
			session = c
		}
	}
	if login.StatusCode != 200 || session == nil {
		t.Fatalf("login: %d, cookies %v", login.StatusCode, login.Header.Values("Set-Cookie"))
	}
	u, err := a.sdk().GetFunctionUrlConfig(context.Background(), &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String(consoleFunction)})
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(aws.ToString(u.FunctionUrl), "http://"), ".")
	get := func(query string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", a.addr+"/fn/"+id+"/?"+query, nil)
		req.Header.Set("Cookie", "theme=dark; gateway_console="+session.Value+"; lang=en")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, body := get("mode=echo")
	var ev struct{ Cookies []string }
	if err := json.Unmarshal([]byte(body), &ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("echo: %d %s", resp.StatusCode, body)
	}
	if strings.Join(ev.Cookies, ",") != "theme=dark,lang=en" || strings.Contains(body, session.Value) {
		t.Errorf("the function's event has cookies %q (want the session dropped, the others kept): %s", ev.Cookies, body)
	}
	if csp := resp.Header.Values("Content-Security-Policy"); len(csp) != 1 || !strings.HasPrefix(csp[0], "sandbox ") || strings.Contains(csp[0], "allow-same-origin") {
		t.Errorf("path-routed function URL response CSP %q, want a sandbox without allow-same-origin", csp)
	}

	resp, body = get("mode=respond&status=200&value=ok&cookies=" + url.QueryEscape("gateway_console=forged|__Host-gateway_console=forged|flavour=mint"))
	if got := resp.Header.Values("Set-Cookie"); resp.StatusCode != 200 || len(got) != 1 || got[0] != "flavour=mint" {
		t.Errorf("Set-Cookie of a function's response: %d %q %s (want only flavour=mint)", resp.StatusCode, got, body)
	}

	// The session still works for the console itself: the function saw nothing it could reuse.
	req, _ := http.NewRequest("GET", a.addr+"/2015-03-31/functions/", nil)
	req.AddCookie(session)
	req.Header.Set("X-Gateway-Console", "1")
	list, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	list.Body.Close()
	if list.StatusCode != 200 {
		t.Fatalf("the console's own request with the session: %d", list.StatusCode)
	}
}
