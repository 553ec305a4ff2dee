package server

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/orderpipe/pipeline/plumbing/logging"
)

// reqState is what a handler tells the access log about a request.
type reqState struct {
	requestID string
	platform  string
	outcome   string
	reason    string
	orderID   string
	key       string
	ingressID string
	bytesIn   int
	err       error
}

const stateKey = "ingress.state"

func stateOf(c echo.Context) *reqState {
	if st, ok := c.Get(stateKey).(*reqState); ok {
		return st
	}
	st := &reqState{}
	c.Set(stateKey, st)
	return st
}

// requestID keeps a caller's X-Request-Id when it is short and printable, else makes one, and
// echoes it on the reply.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !printable(id, 128) {
			id = s.c.NewID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		stateOf(c).requestID = id
		return next(c)
	}
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

// recover turns a handler panic into a 500 in the platform's shape and an error log with the
// stack; the process keeps serving.
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
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
}

// accessLog writes one line per request, counts callback outcomes and keeps the in-flight gauge.
// Nothing secret reaches it: no body, the query with sign/signature/secret/token redacted, and
// phone numbers masked wherever a value is logged.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.c.Now()
		isCallback := c.Path() == PathDianwoda || c.Path() == PathEleme
		if isCallback {
			s.inflight.Inc()
			defer s.inflight.Dec()
		}
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		st := stateOf(c)
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
			return nil // probes and scrapes are not access-logged
		}
		level := zapcore.InfoLevel
		if status >= 500 {
			level = zapcore.WarnLevel
		}
		log := s.c.Log
		if isCallback && st.outcome == OutcomeOK {
			log = s.okLog
		}
		ce := log.Check(level, "request")
		if ce == nil {
			return nil // the level is off: build no fields
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
		return nil
	}
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
