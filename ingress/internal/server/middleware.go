package server

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/orderpipe/pipeline/plumbing/logging"
)

// reqState is what a handler tells the access log about a request.
type reqState struct {
	requestID string
	// ownID: requestID was made here (the caller sent none usable), so it is unique to this
	// request and publish uses it as the record's ingress_id instead of making a second one.
	ownID     bool
	start     time.Time // when serving began: the access line's start and the envelope's received_at
	platform  string
	outcome   string
	reason    string
	orderID   string
	key       string
	ingressID string
	bytesIn   int
	err       error
}

// reqCtx is a request's echo context together with its reqState. serve takes one from a pool
// for every request: echo builds its middleware chain per request (a closure per middleware)
// and c.Set makes a map per request; at thousands of callbacks a second those allocations and
// the collections they cause are a measurable share of the ingress's CPU.
type reqCtx struct {
	echo.Context
	st reqState
}

var reqCtxPool = sync.Pool{New: func() any { return new(reqCtx) }}

// stateOf is the request's state. Every request passes serve (Handler installs it for every
// route, echo's not-found and method-not-allowed answers included), so c is always its reqCtx.
func stateOf(c echo.Context) *reqState { return &c.(*reqCtx).st }

// serve is the one middleware every request passes: its request id, its access line and
// metrics, and recovery from a handler's panic, in that order (outermost first). One
// middleware calling three functions instead of three middlewares: echo applies middleware
// anew for every request.
func (s *Server) serve(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rc := reqCtxPool.Get().(*reqCtx)
		rc.Context = c
		s.requestID(rc)
		s.accessLog(rc, next)
		// Not reached when a handler aborts with http.ErrAbortHandler (re-panicked by
		// recover): that request's context is left to the collector.
		*rc = reqCtx{}
		reqCtxPool.Put(rc)
		return nil
	}
}

// requestID keeps a caller's X-Request-Id when it is short and printable, else makes one, and
// echoes it on the reply.
func (s *Server) requestID(rc *reqCtx) {
	id := rc.Request().Header.Get(echo.HeaderXRequestID)
	if !printable(id, 128) {
		id = s.c.NewID()
		rc.st.ownID = true
	}
	rc.Response().Header().Set(echo.HeaderXRequestID, id)
	rc.st.requestID = id
}

func printable(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// recover runs next, turning its panic into a 500 in the platform's shape and an error log with
// the stack; the process keeps serving.
func (s *Server) recover(c echo.Context, next echo.HandlerFunc) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler {
			panic(r)
		}
		st := stateOf(c)
		st.outcome = OutcomePanic
		st.err = fmt.Errorf("panic: %v", r)
		s.c.Log.Error("panic", zap.String("request_id", st.requestID), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		p := elmShape
		if c.Path() == PathDianwoda {
			p = dwdShape
		}
		err = s.fail(c, p, http.StatusInternalServerError, OutcomePanic, "internal error")
	}()
	return next(c)
}

// accessLog runs next (through recover), answers an error it returned, writes one line per
// request, counts callback outcomes and keeps the in-flight gauge.
// Nothing secret reaches it: no body, the query with sign/signature/secret/token redacted, and
// phone numbers masked wherever a value is logged.
func (s *Server) accessLog(rc *reqCtx, next echo.HandlerFunc) {
	var c echo.Context = rc
	start := s.c.Now()
	rc.st.start = start
	isCallback := c.Path() == PathDianwoda || c.Path() == PathEleme
	if isCallback {
		s.inflight.Inc()
		defer s.inflight.Dec()
	}
	if err := s.recover(c, next); err != nil {
		// Not c.Error: the embedded context would pass itself, not rc, to the handler.
		s.errorHandler(err, c)
	}
	st := &rc.st
	elapsed := s.c.Now().Sub(start)
	status := c.Response().Status
	if isCallback && st.platform != "" && st.outcome != "" {
		if m, ok := s.accepted[st.platform]; ok && st.outcome == OutcomeOK {
			m.requests.Inc() // resolved once: no label hashing on the hot path
			m.seconds.Observe(elapsed.Seconds())
		} else {
			s.requests.WithLabelValues(st.platform, st.outcome).Inc()
			s.seconds.WithLabelValues(st.platform, st.outcome).Observe(elapsed.Seconds())
		}
	}
	if !isCallback && status < 400 {
		return // probes and scrapes are not access-logged
	}
	level := zapcore.InfoLevel
	if status >= 500 {
		level = zapcore.WarnLevel
	}
	log := s.c.Log
	if isCallback {
		switch st.outcome {
		case OutcomeOK:
			log = s.okLog
		case OutcomeBusy, OutcomeBodyMemory, OutcomeUnavailable:
			log = s.shedLog
		}
	}
	ce := log.Check(level, "request")
	if ce == nil {
		return // the level is off: build no fields
	}
	req := c.Request()
	fields := []zap.Field{
		zap.String("method", req.Method),
		zap.String("path", req.URL.Path),
		zap.String("query", MaskQuery(req.URL.RawQuery)),
		zap.Int("status", status),
		zap.Duration("duration", elapsed),
		zap.String("request_id", MaskPhones(st.requestID)),
		zap.String("remote", c.RealIP()),
		zap.String("user_agent", MaskPhones(req.UserAgent())),
	}
	if st.platform != "" {
		fields = append(fields, zap.String("platform", st.platform))
	}
	if st.outcome != "" {
		fields = append(fields, zap.String("outcome", st.outcome))
	}
	if st.reason != "" {
		fields = append(fields, zap.String("reason", MaskPhones(st.reason)))
	}
	if st.orderID != "" {
		fields = append(fields, zap.String("order_id", MaskPhones(st.orderID)))
	}
	if st.ingressID != "" {
		fields = append(fields, zap.String("ingress_id", st.ingressID))
	}
	if st.bytesIn > 0 {
		fields = append(fields, zap.Int("bytes_in", st.bytesIn))
	}
	if st.err != nil {
		fields = append(fields, zap.String("error", MaskPhones(st.err.Error())))
	}
	ce.Write(fields...)
}

// secretParams are query parameters whose values never reach a log.
var secretParams = map[string]bool{"sign": true, "signature": true, "secret": true, "token": true, "access_token": true, "appsecret": true}

// MaskQuery returns a raw query with secret parameters redacted and phone numbers masked.
func MaskQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "[unparseable]"
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(MaskPhones(k))
			b.WriteByte('=')
			if secretParams[strings.ToLower(k)] {
				b.WriteString(logging.Redact(v))
			} else {
				b.WriteString(MaskPhones(v))
			}
		}
	}
	return b.String()
}

// MaskPhones masks every run of exactly 11 digits that starts with 1 (a mainland mobile number)
// as logging.MaskPhone does; longer digit runs (order ids) are left alone.
func MaskPhones(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i == 11 && s[i] == '1' {
			if b == nil {
				b = []byte(s)
			}
			copy(b[i:j], logging.MaskPhone(s[i:j]))
		}
		i = j
	}
	if b == nil {
		return s
	}
	return string(b)
}
