package sandbox_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// FuzzRuntimeAPI sends raw bytes on a connection of their own to an environment's Runtime API
// (apiHarness: no container, the test is the runtime). With beforeInit they arrive during Init,
// otherwise while the runtime holds the invocation (request id apiRequestID); stream makes the
// caller take a streamed response. The test's runtime then answers the invocation itself.
// Properties:
//   - the server never panics, hangs or answers outside the protocol: 100, 200 (an event for a
//     GET /next), 202, 400, 403, 404, 405 or 413, with the API's error JSON; 500 only for the
//     Runtime.Shutdown and Runtime.Superseded answers to GET /next;
//   - an invocation is accepted at most once, over every connection;
//   - bytes that neither ask for the next event, nor answer the current invocation, nor report
//     an Init error have no effect: the runtime's own answer is accepted and is what the
//     caller gets, from the one environment started;
//   - an accepted init/error makes Init run again in a new environment, which then answers.
//
// extPrefix is the Extensions API's, served at the same address.
const extPrefix = "/2020-01-01/extension/"

func FuzzRuntimeAPI(f *testing.F) {
	inv := apiPrefix + "invocation/"
	f.Add(false, false, []byte("POST "+inv+apiRequestID+"/response HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\"ok\""))
	f.Add(false, false, []byte("POST "+inv+"00000000-0000-4000-8000-000000000000/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add(false, false, []byte("POST "+inv+apiRequestID+"/error HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Error-Type: Handler.Failed\r\n"+
		"Content-Length: 47\r\n\r\n{\"errorMessage\":\"boom\",\"errorType\":\"Handler.X\"}"))
	f.Add(false, true, []byte("POST "+inv+apiRequestID+"/response HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"+
		"Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"+
		"5\r\nhello\r\n0\r\nLambda-Runtime-Function-Error-Type: Late.Error\r\nLambda-Runtime-Function-Error-Body: eyJlcnJvclR5cGUiOiJMYXRlIn0=\r\n\r\n"))
	f.Add(false, false, []byte("GET "+inv+"next HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(true, false, []byte("POST "+apiPrefix+"init/error HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Error-Type: Runtime.ImportError\r\n"+
		"Content-Length: 8\r\n\r\nnot json"))
	f.Add(true, false, []byte("PUT "+apiPrefix+"init/error HTTP/1.1\r\nHost: x\r\n\r\nGET /other HTTP/1.1\r\nHost: x\r\n\r\n"))
	ext := extPrefix
	f.Add(false, false, []byte("POST "+ext+"register HTTP/1.1\r\nHost: x\r\nLambda-Extension-Name: late\r\nContent-Length: 20\r\n\r\n{\"events\":[\"INVOKE\"]}"))
	f.Add(false, false, []byte("GET "+ext+"event/next HTTP/1.1\r\nHost: x\r\nLambda-Extension-Identifier: nobody\r\n\r\n"))
	f.Add(false, false, []byte("POST "+ext+"init/error HTTP/1.1\r\nHost: x\r\n\r\nGET "+ext+"event/next HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(false, false, []byte("PUT /2022-07-01/telemetry HTTP/1.1\r\nHost: x\r\nLambda-Extension-Identifier: nobody\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add(true, false, []byte("PUT /2020-08-15/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /2022-07-01/telemetry HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, beforeInit, stream bool, raw []byte) {
		h := newAPIHarness(t, stream, nil)
		inst := h.nextInstance(t)
		var exch apiExchange
		if beforeInit {
			exch = h.exchange(t, inst, raw)
			h.startRuntime(inst, nil)
		} else {
			proceed := make(chan struct{})
			gotEvent := h.startRuntime(inst, proceed)
			select {
			case <-gotEvent:
			case <-time.After(10 * time.Second):
				t.Fatal("the runtime got no event")
			}
			exch = h.exchange(t, inst, raw)
			close(proceed)
		}
		res := h.result(t)
		h.shutdown(t)
		for _, e := range h.errs() {
			t.Error(e)
		}

		sent := classify(raw)
		posts, starts := h.posts(), h.starts()
		// Before Init ends, a 202 to the fuzz bytes may be for their init/error.
		accepted := exch.accepted
		if beforeInit && sent.initError && accepted > 0 {
			accepted--
		}
		for _, s := range posts {
			if s == http.StatusAccepted {
				accepted++
			}
		}
		if accepted > 1 {
			t.Fatalf("the invocation was accepted %d times (202s to the fuzz bytes: %d, to the runtime: %v)", accepted, exch.accepted, posts)
		}
		if len(posts) > 0 && posts[0] == http.StatusAccepted && !res.is(apiAnswer) {
			t.Fatalf("the runtime's answer was accepted, the caller got %s", res)
		}
		switch {
		case beforeInit && exch.accepted > 0 && sent.initError && !sent.next:
			// (With a GET /next after it, Init may end either way.)
			if starts != 2 || !res.is(apiAnswer) {
				t.Fatalf("after an accepted init/error: %d environments started, the caller got %s; want Init run again, and the answer", starts, res)
			}
		case beforeInit && sent.register:
			// An extension registered before Init holds Init until it polls (or Init times out).
		case !sent.next && !sent.claim && !(beforeInit && sent.initError):
			if exch.accepted > 0 || exch.events > 0 || starts != 1 || len(posts) != 1 || posts[0] != http.StatusAccepted || !res.is(apiAnswer) {
				t.Fatalf("bytes that touch no invocation changed the outcome: %d accepted, %d events, %d environments, "+
					"runtime's answer %v, caller got %s", exch.accepted, exch.events, starts, posts, res)
			}
		}
	})
}

// sentRequests is what the fuzz bytes ask for, read with the parser the server uses.
type sentRequests struct {
	next      bool // GET .../invocation/next
	claim     bool // POST .../invocation/apiRequestID/response or /error
	initError bool // POST .../init/error
	register  bool // POST /2020-01-01/extension/register: an extension Init then waits for
}

func classify(raw []byte) sentRequests {
	var s sentRequests
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return s
		}
		p := req.URL.Path
		switch {
		case req.Method == http.MethodGet && p == apiPrefix+"invocation/next":
			s.next = true
		case req.Method == http.MethodPost && (p == apiPrefix+"invocation/"+apiRequestID+"/response" || p == apiPrefix+"invocation/"+apiRequestID+"/error"):
			s.claim = true
		case req.Method == http.MethodPost && p == apiPrefix+"init/error":
			s.initError = true
		case req.Method == http.MethodPost && p == extPrefix+"register":
			s.register = true
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return s
		}
	}
}
