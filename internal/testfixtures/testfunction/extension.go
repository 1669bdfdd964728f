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
