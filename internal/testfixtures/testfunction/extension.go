package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// An internal extension of the test function, registered (for INVOKE) from its own process
// before the runtime's first poll when TEST_EXTENSION names it. TEST_EXTENSION_MISUSE=1 first
// tries what a hostile extension would; TEST_EXTENSION_INIT_ERROR posts init/error with that
// type instead of polling.
func startExtension() {
	name := os.Getenv("TEST_EXTENSION")
	if name == "" {
		return
	}
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension/"
	if os.Getenv("TEST_EXTENSION_MISUSE") == "1" {
		misuse(base, name)
	}
	id, ok := register(base, name, `{"events":["INVOKE"]}`)
	if !ok {
		return
	}
	if os.Getenv("TEST_EXTENSION_MISUSE") == "1" {
		misuseAfter(base, name)
	}
	go extensionLoop(base, name, id, nil)
}

// externalExtension runs the test function as an external extension, started from
// /opt/extensions under a name that says what it does: "crash..." exits after registering,
// "early..." before, "dies..." at its first INVOKE, "impostor..." after registering under
// another name; "stall..." never polls after its first INVOKE, "deaf..." never after
// SHUTDOWN; "telemetry..." subscribes to the Telemetry API and "logs..." to the Logs API, and
// both serve what they received at GET /seen (ports 4243 and 4244); "slow..." subscribes to the
// function's lines only and takes 300 ms for each batch (port 4245). "quiet..." prints nothing
// for its events; "idle..." and "tap..." register for no event, and "tap..." subscribes to the
// platform events and the function's lines, counting them (GET /counts on port 4246). Each registers for INVOKE
// and SHUTDOWN, prints "EXT <name> <event> <request id>" for every event, works
// TEST_EXTENSION_WORK_MS after it ("EXT <name> done <request id>"), and exits after SHUTDOWN.
func externalExtension(name string) {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension/"
	if strings.HasPrefix(name, "early") {
		fmt.Println("EXT", name, "exiting before registering")
		os.Exit(2)
	}
	if strings.HasPrefix(name, "impostor") {
		// Registers under another name than its file's: refused before the runtime runs.
		register(base, "not-"+name, `{"events":["INVOKE"]}`)
		os.Exit(1)
	}
	events := `{"events":["INVOKE","SHUTDOWN"]}`
	if strings.HasPrefix(name, "idle") || strings.HasPrefix(name, "tap") {
		events = `{"events":[]}`
	}
	id, ok := register(base, name, events)
	if !ok {
		os.Exit(1)
	}
	if strings.HasPrefix(name, "crash") {
		fmt.Println("EXT", name, "crashing")
		os.Exit(3)
	}
	var sub *subscriber
	switch {
	case strings.HasPrefix(name, "telemetry"):
		sub = subscribe(name, id, 4243, "/2022-07-01/telemetry",
			`{"schemaVersion":"2022-12-13","types":["platform","function","extension"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243/telemetry"}}`, 0)
	case strings.HasPrefix(name, "slow"):
		sub = subscribe(name, id, 4245, "/2022-07-01/telemetry",
			`{"schemaVersion":"2022-12-13","types":["function"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4245/slow"}}`, 300*time.Millisecond)
	case strings.HasPrefix(name, "tap"):
		sub = subscribe(name, id, 4246, "/2022-07-01/telemetry",
			`{"schemaVersion":"2022-12-13","types":["platform","function"],"buffering":{"timeoutMs":100},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4246/tap"}}`, 0)
		sub.countOnly = true
	case strings.HasPrefix(name, "logs"):
		sub = subscribe(name, id, 4244, "/2020-08-15/logs",
			`{"types":["platform","function","extension"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25},"destination":{"protocol":"HTTP","URI":"http://sandbox:4244/logs"}}`, 0)
	}
	extensionLoop(base, name, id, sub)
	os.Exit(0)
}

// register registers an extension and prints "EXT <name> registered <status> <body>".
func register(base, name, events string) (string, bool) {
	req, _ := http.NewRequest("POST", base+"register", bytes.NewReader([]byte(events)))
	req.Header.Set("Lambda-Extension-Name", name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println("EXT", name, "register failed:", err)
		return "", false
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("Lambda-Extension-Identifier")
	fmt.Println("EXT", name, "registered", resp.StatusCode, string(body))
	if t := os.Getenv("TEST_EXTENSION_INIT_ERROR"); t != "" {
		req, _ := http.NewRequest("POST", base+"init/error", bytes.NewReader([]byte(`{"errorMessage":"the extension cannot start","errorType":"`+t+`"}`)))
		req.Header.Set("Lambda-Extension-Identifier", id)
		req.Header.Set("Lambda-Extension-Function-Error-Type", t)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		return "", false
	}
	return id, resp.StatusCode == 200
}

// extensionLoop polls for events until SHUTDOWN or an error.
func extensionLoop(base, name, id string, sub *subscriber) {
	work, _ := strconv.Atoi(os.Getenv("TEST_EXTENSION_WORK_MS"))
	stall := strings.HasPrefix(name, "stall")
	// quiet: an extension that does nothing with its events, not even print them.
	quiet := strings.HasPrefix(name, "quiet")
	client := &http.Client{}
	for {
		req, _ := http.NewRequest("GET", base+"event/next", nil)
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println("EXT", name, "next failed:", err)
			return
		}
		var ev struct {
			EventType, RequestID, InvokedFunctionArn, ShutdownReason string
			DeadlineMs                                               int64
		}
		err = json.NewDecoder(resp.Body).Decode(&ev)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			fmt.Println("EXT", name, "next answered", resp.StatusCode, err)
			return
		}
		if !quiet {
			fmt.Println("EXT", name, ev.EventType, ev.RequestID+ev.ShutdownReason, ev.DeadlineMs > 0, ev.InvokedFunctionArn)
		}
		if ev.EventType == "INVOKE" && strings.HasPrefix(name, "dies") {
			fmt.Println("EXT", name, "dying")
			os.Exit(3)
		}
		if stall || (ev.EventType == "SHUTDOWN" && strings.HasPrefix(name, "deaf")) {
			select {}
		}
		time.Sleep(time.Duration(work) * time.Millisecond)
		if ev.EventType == "SHUTDOWN" && sub != nil {
			sub.summary()
		}
		if !quiet {
			fmt.Println("EXT", name, "done", ev.RequestID)
		}
		if ev.EventType == "SHUTDOWN" {
			return
		}
	}
}

// subscriber is a Telemetry or Logs API subscriber: it keeps every event it is sent.
type subscriber struct {
	name  string
	delay time.Duration // before taking each batch: a subscriber that does not keep up
	// countOnly keeps counts of the events by type instead of the events (GET /counts).
	countOnly bool
	counts    map[string]int
	mu        sync.Mutex
	events    []json.RawMessage
}

// subscribe listens on port, then subscribes at path with body, printing
// "EXT <name> subscribed <status> <body>".
func subscribe(name, id string, port int, path, body string, delay time.Duration) *subscriber {
	s := &subscriber{name: name, delay: delay}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		fmt.Println("EXT", name, "listen failed:", err)
		return s
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(s.delay)
		var batch []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			fmt.Println("EXT", name, "got a batch that is not a JSON array:", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		if s.countOnly {
			if s.counts == nil {
				s.counts = map[string]int{}
			}
			for _, raw := range batch {
				var ev struct {
					Type   string
					Record struct{ DroppedRecords int }
				}
				_ = json.Unmarshal(raw, &ev)
				s.counts[ev.Type]++
				s.counts["dropped"] += ev.Record.DroppedRecords
			}
		} else {
			s.events = append(s.events, batch...)
		}
		s.mu.Unlock()
	})
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(s.counts)
	})
	mux.HandleFunc("GET /seen", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(s.events)
	})
	go func() { _ = http.Serve(ln, mux) }()
	req, _ := http.NewRequest("PUT", "http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+path, strings.NewReader(body))
	req.Header.Set("Lambda-Extension-Identifier", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println("EXT", name, "subscribe failed:", err)
		return s
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("EXT", name, "subscribed", resp.StatusCode, string(b))
	return s
}

// summary prints how many events of each type it received: "EXT <name> saw <type>=<n> ...".
func (s *subscriber) summary() {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[string]int{}
	for _, raw := range s.events {
		var ev struct{ Type string }
		_ = json.Unmarshal(raw, &ev)
		counts[ev.Type]++
	}
	var parts []string
	for t, n := range counts {
		parts = append(parts, fmt.Sprintf("%s=%d", t, n))
	}
	sort.Strings(parts)
	fmt.Println("EXT", s.name, "saw", strings.Join(parts, " "))
}

// misuseCall makes one Extensions API call and prints "EXT misuse <what> <status> <errorType>".
func misuseCall(what, method, url, body string, header map[string]string) (int, http.Header) {
	req, _ := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println("EXT misuse", what, "failed:", err)
		return 0, nil
	}
	var e struct{ ErrorType string }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	fmt.Println("EXT misuse", what, resp.StatusCode, e.ErrorType)
	return resp.StatusCode, resp.Header
}

// misuse is what a careless or hostile extension tries before registering properly.
func misuse(base, name string) {
	misuseCall("no-name", "POST", base+"register", `{"events":["INVOKE"]}`, nil)
	misuseCall("bad-name", "POST", base+"register", `{"events":["INVOKE"]}`, map[string]string{"Lambda-Extension-Name": "a/b"})
	misuseCall("bad-event", "POST", base+"register", `{"events":["INVOKE","REBOOT"]}`, map[string]string{"Lambda-Extension-Name": name})
	misuseCall("not-json", "POST", base+"register", `events: all`, map[string]string{"Lambda-Extension-Name": name})
	misuseCall("no-id", "GET", base+"event/next", "", nil)
	misuseCall("unknown-id", "GET", base+"event/next", "", map[string]string{"Lambda-Extension-Identifier": "nobody"})
	misuseCall("wrong-method", "GET", base+"register", "", map[string]string{"Lambda-Extension-Name": name})
	misuseCall("unknown-path", "POST", base+"telemetry-please", "", nil)
	misuseCall("internal-shutdown", "POST", base+"register", `{"events":["INVOKE","SHUTDOWN"]}`, map[string]string{"Lambda-Extension-Name": name})
}

// misuseAfter is what it tries once registered: its name again, and more extensions than an
// environment takes (each of those polls, so that Init can end).
func misuseAfter(base, name string) {
	misuseCall("same-name", "POST", base+"register", `{"events":["INVOKE"]}`, map[string]string{"Lambda-Extension-Name": name})
	for i := 2; i <= 11; i++ {
		code, h := misuseCall(fmt.Sprintf("extra-%d", i), "POST", base+"register", `{"events":[]}`,
			map[string]string{"Lambda-Extension-Name": fmt.Sprintf("%s-%d", name, i)})
		if code != 200 {
			continue
		}
		id := h.Get("Lambda-Extension-Identifier")
		go func() {
			for {
				req, _ := http.NewRequest("GET", base+"event/next", nil)
				req.Header.Set("Lambda-Extension-Identifier", id)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return
				}
			}
		}()
	}
}
