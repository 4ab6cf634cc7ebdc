package main

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// droppingServer is an HTTP/1.1 server on 127.0.0.1 that answers the first
// request of each connection with 200, keeping the connection open, and
// reads but never answers any later request on it: it closes the
// connection instead, as a target behind a load balancer that reaps idle
// connections does. A client that resends on such a close shows up as two
// requests for one call.
type droppingServer struct {
	l    net.Listener
	mu   sync.Mutex
	got  []string // "METHOD path" of every request read
	wg   sync.WaitGroup
	URL  string
	done chan struct{}
}

func newDroppingServer(t *testing.T) *droppingServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &droppingServer{l: l, URL: "http://" + l.Addr().String(), done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { l.Close(); close(s.done); s.wg.Wait() })
	return s
}

func (s *droppingServer) serve(c net.Conn) {
	defer c.Close()
	go func() { <-s.done; c.Close() }()
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		var body [1 << 10]byte
		for {
			if _, err := req.Body.Read(body[:]); err != nil {
				break
			}
		}
		s.mu.Lock()
		s.got = append(s.got, req.Method+" "+req.URL.Path)
		s.mu.Unlock()
		if n > 0 {
			return // a reused connection: dropped without an answer
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		if req.Close {
			return
		}
	}
}

// Requests returns what the server has read, in order.
func (s *droppingServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.got...)
}

// TestNoResendOnDroppedReusedConnection fires each method three times at a
// target that drops reused connections, notifying a webhook (on a second
// such server) after each: every attempt and every notification must reach
// its server exactly once, and succeed. net/http resends a replayable
// request (GET, HEAD, OPTIONS, or any with an Idempotency-Key header, which
// every delivery has) whose reused connection closed before the answer, and
// the invoker would log the two as one attempt; a notification, not
// replayable, would fail instead.
func TestNoResendOnDroppedReusedConnection(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			tg, hook := newDroppingServer(t), newDroppingServer(t)
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.Client = newHTTPClient(true) // the servers are on 127.0.0.1
			var wantTarget, wantHook, got []string
			for i := range 3 {
				m := httpFire("t-1", method, tg.URL+"/target")
				m.ScheduledAt = igAt.Add(time.Duration(i) * time.Minute)
				if method != "GET" && method != "HEAD" {
					m.HTTP.Body = `{"n":` + strconv.Itoa(i) + `}`
				}
				m.Notify = &Notify{Webhook: hook.URL + "/hook", OnSuccess: ptrTo(true)}
				got = append(got, e.invoke(igRecord(t, "m-"+strconv.Itoa(i), 1, m))...)
				wantTarget = append(wantTarget, method+" /target")
				wantHook = append(wantHook, "POST /hook")
			}
			if diff := cmp.Diff(wantTarget, tg.Requests()); diff != "" {
				t.Errorf("requests the target read (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantHook, hook.Requests()); diff != "" {
				t.Errorf("requests the webhook read (-want +got):\n%s", diff)
			}
			if len(got) != 0 {
				t.Errorf("failed messages %v, want none", got)
			}
			if lines := e.log.WithMsg(t, "notification failed"); len(lines) != 0 {
				t.Errorf("notification failures %v, want none", lines)
			}
		})
	}
}
