package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// An internal extension of the test function, registered from its own process before the
// runtime's first poll when TEST_EXTENSION names it: it prints every event it gets ("EXT <name>
// <event> <request id>") to the function's log, then polls again, after TEST_EXTENSION_WORK_MS
// ("EXT <name> done <request id>" before the poll). TEST_EXTENSION_STALL=1 never polls again
// after its first INVOKE, TEST_EXTENSION_IGNORE_SHUTDOWN=1 never after SHUTDOWN; TEST_EXTENSION_INIT_ERROR posts init/error with that type instead of
// polling.
func startExtension() {
	name := os.Getenv("TEST_EXTENSION")
	if name == "" {
		return
	}
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension/"
	if os.Getenv("TEST_EXTENSION_MISUSE") == "1" {
		misuse(base, name)
	}
	req, _ := http.NewRequest("POST", base+"register", bytes.NewReader([]byte(`{"events":["INVOKE","SHUTDOWN"]}`)))
	req.Header.Set("Lambda-Extension-Name", name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println("EXT", name, "register failed:", err)
		return
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
		return
	}
	if os.Getenv("TEST_EXTENSION_MISUSE") == "1" {
		misuseAfter(base, name)
	}
	work, _ := strconv.Atoi(os.Getenv("TEST_EXTENSION_WORK_MS"))
	stall := os.Getenv("TEST_EXTENSION_STALL") == "1"
	client := &http.Client{}
	go func() {
		for {
			req, _ := http.NewRequest("GET", base+"event/next", nil)
			req.Header.Set("Lambda-Extension-Identifier", id)
			resp, err := client.Do(req)
			if err != nil {
				fmt.Println("EXT", name, "next failed:", err)
				return
			}
			var ev struct {
				EventType, RequestID, InvokedFunctionArn string
				DeadlineMs                               int64
			}
			err = json.NewDecoder(resp.Body).Decode(&ev)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil {
				fmt.Println("EXT", name, "next answered", resp.StatusCode, err)
				return
			}
			fmt.Println("EXT", name, ev.EventType, ev.RequestID, ev.DeadlineMs > 0, ev.InvokedFunctionArn)
			if stall || (ev.EventType == "SHUTDOWN" && os.Getenv("TEST_EXTENSION_IGNORE_SHUTDOWN") == "1") {
				select {}
			}
			time.Sleep(time.Duration(work) * time.Millisecond)
			fmt.Println("EXT", name, "done", ev.RequestID)
		}
	}()
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
