// Package server is the ingress HTTP surface: the echo router with the two callback routes, the
// probe mirrors, and the middleware every request passes (request id, panic recovery, in-flight
// gauge, masked access log).
//
// A callback is answered "success" only after publish.Publisher returned nil, i.e. Kafka
// acknowledged the record with acks=all. Every other answer is in the platform's own shape so the
// platform's retry does the right thing; docs/specs/contract.md lists them and README.md has the table.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/semaphore"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
	"github.com/orderpipe/pipeline/ingress/internal/dianwoda"
	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/ingress/internal/publish"
	"github.com/orderpipe/pipeline/schemas"
)

// Routes of the callback port.
const (
	PathDianwoda = "/v1/callbacks/dianwoda"
	PathEleme    = "/v1/callbacks/eleme"
	PathHealthz  = "/healthz"
	PathReadyz   = "/readyz"
)

// Outcomes, the bounded values of the outcome label.
const (
	OutcomeOK           = "ok"
	OutcomeURLCheck     = "url_check"
	OutcomeBadSignature = "bad_signature"
	OutcomeMalformed    = "malformed"
	OutcomeTooLarge     = "too_large"
	OutcomeUnconfigured = "unconfigured"
	OutcomeBusy         = "busy"
	OutcomeBodyMemory   = "body_memory_full"
	OutcomeUnavailable  = "kafka_unavailable"
	OutcomePanic        = "panic"
)

// Publisher is what the handlers need from Kafka.
type Publisher interface {
	Publish(ctx context.Context, msg kafka.Message) error
}

// Admitter is a Publisher that can tell, before a callback is read, that its write would be
// refused now (publish.Publisher does): Admit returns publish.ErrBusy or publish.ErrUnavailable
// then, and the callback is answered 503 without reading, verifying or encoding it. An
// overloaded ingress then sheds a platform's retries for a fraction of what accepting one costs,
// instead of for more. Publish still decides for the callbacks admitted.
type Admitter interface {
	Admit() error
}

// Config configures New.
type Config struct {
	MaxBody int64
	// MaxBodyMemory bounds the bytes of request bodies being read and held (until the reply)
	// across all requests, before and independently of the bound on Kafka writes in flight:
	// a request that does not fit is answered 503 in its platform's shape, its body discarded
	// as it arrives (never buffered).
	// A held request costs about 1.5 times its body in memory (its envelope). 0: 32 MiB.
	MaxBodyMemory   int64
	DianwodaSecrets []string
	ElemeSecrets    map[string][]string
	Publisher       Publisher
	// Ready answers /readyz on this port (the ops port's readiness).
	Ready func() error
	// Metrics are served on the ops port only (OPS_ADDR): they name internal topics, outcomes
	// and rates, which the public callback port does not show.
	Log *zap.Logger
	// AcceptedLog is how accepted callbacks are access-logged (refusals and failures are always
	// logged): AcceptedLogAll, AcceptedLogSampled (the default) or AcceptedLogNone. At thousands
	// of callbacks a second one line each is a large share of the ingress's CPU and of the log
	// pipeline's volume, and says nothing the record on callbacks.raw.v1 does not (its
	// ingress_id, key and received_at) or the metrics do not count.
	AcceptedLog string
	Registry    prometheus.Registerer
	// Now and NewID are injectable for tests; defaults time.Now and UUIDv7.
	Now   func() time.Time
	NewID func() string
}

// AcceptedLog values.
const (
	AcceptedLogAll     = "all"
	AcceptedLogSampled = "sampled"
	AcceptedLogNone    = "none"
)

// Sampling of accepted callbacks' access lines (AcceptedLogSampled): the first
// acceptedLogFirst of each second, then one in acceptedLogThereafter.
const (
	acceptedLogFirst      = 10
	acceptedLogThereafter = 100
)

// Server holds the handlers' dependencies.
type Server struct {
	c Config
	// okLog writes the access lines of accepted callbacks (sampled, all or none: AcceptedLog).
	okLog *zap.Logger
	// shedLog writes the access lines of callbacks shed for load (busy, body_memory_full,
	// kafka_unavailable), always sampled: a retry storm is thousands of them a second, each
	// counted in ingress_requests_total.
	shedLog *zap.Logger
	// admit is the Publisher's Admit, or nil when it has none.
	admit    func() error
	dwd      *dianwoda.Verifier
	elm      *eleme.Verifier
	requests *prometheus.CounterVec
	sigFails *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	inflight prometheus.Gauge
	// accepted holds each platform's outcome="ok" series, resolved once.
	accepted map[string]acceptedMetrics
	// bodies is the body-memory budget, in bytes (MaxBodyMemory).
	bodies   *semaphore.Weighted
	bodyHeld prometheus.Gauge
	// tooLarge is the refusal message of a body over MaxBody, made once (not per request).
	tooLarge string
}

type acceptedMetrics struct {
	requests prometheus.Counter
	seconds  prometheus.Observer
}

// DefaultMaxBodyMemory is MaxBodyMemory's default: 32 bodies of the default 1 MiB, ~50 MiB of
// heap with their envelopes, well inside the 256 MiB the Kubernetes manifest gives the pod.
const DefaultMaxBodyMemory = 32 << 20

// New builds the server and registers its metrics.
func New(c Config) *Server {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		// The ids (ingress id, request id) come from a pool of random bytes filled 512 ids at
		// a time instead of one getrandom(2) call each (ids are not secrets; see
		// uuid.EnableRandPool). Set once here, not checked on every id.
		uuid.EnableRandPool()
		c.NewID = newID
	}
	if c.Ready == nil {
		c.Ready = func() error { return nil }
	}
	if c.MaxBodyMemory <= 0 {
		c.MaxBodyMemory = DefaultMaxBodyMemory
	}
	if c.MaxBodyMemory < c.MaxBody {
		c.MaxBodyMemory = c.MaxBody // one body at the limit must always fit
	}
	s := &Server{
		c:       c,
		okLog:   acceptedLogger(c.Log, c.AcceptedLog),
		shedLog: acceptedLogger(c.Log, AcceptedLogSampled),
		dwd:     dianwoda.NewVerifier(c.DianwodaSecrets),
		elm:     eleme.NewVerifier(c.ElemeSecrets),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingress_requests_total",
			Help: "Callback requests answered, by platform and outcome.",
		}, []string{"platform", "outcome"}),
		sigFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingress_signature_failures_total",
			Help: "Callbacks refused for their signature, by platform and reason (missing, missing_parameter, mismatch, unknown_app).",
		}, []string{"platform", "reason"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ingress_request_seconds",
			Help:    "Time from request start to reply, by platform and outcome.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"platform", "outcome"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingress_inflight_requests",
			Help: "Callback requests being handled now.",
		}),
		bodies:   semaphore.NewWeighted(c.MaxBodyMemory),
		tooLarge: "body exceeds " + strconv.FormatInt(c.MaxBody, 10) + " bytes",
		bodyHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingress_body_memory_bytes",
			Help: "Bytes of the body-memory budget (INGRESS_MAX_BODY_MEMORY) held by requests now.",
		}),
	}
	c.Registry.MustRegister(s.requests, s.sigFails, s.seconds, s.inflight, s.bodyHeld,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ingress_body_memory_limit_bytes",
			Help: "The body-memory budget, INGRESS_MAX_BODY_MEMORY.",
		}, func() float64 { return float64(c.MaxBodyMemory) }))
	if a, ok := c.Publisher.(Admitter); ok {
		s.admit = a.Admit
	}
	s.accepted = map[string]acceptedMetrics{}
	for _, p := range []string{schemas.PlatformDianwoda, schemas.PlatformEleme} {
		s.accepted[p] = acceptedMetrics{s.requests.WithLabelValues(p, OutcomeOK), s.seconds.WithLabelValues(p, OutcomeOK)}
		for _, o := range []string{OutcomeOK, OutcomeBadSignature, OutcomeMalformed, OutcomeUnavailable, OutcomeBusy, OutcomeBodyMemory} {
			s.requests.WithLabelValues(p, o)
		}
	}
	return s
}

func acceptedLogger(log *zap.Logger, mode string) *zap.Logger {
	switch mode {
	case AcceptedLogAll:
		return log
	case AcceptedLogNone:
		return zap.NewNop()
	}
	return log.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(core, time.Second, acceptedLogFirst, acceptedLogThereafter)
	}))
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// Handler returns the echo router of the callback port.
func (s *Server) Handler() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.serve)
	// The routes' own middleware is applied here, once: echo would apply it per request.
	e.POST(PathDianwoda, s.admission(dwdShape)(s.dianwoda))
	e.POST(PathEleme, s.admission(elmShape)(s.eleme))
	e.GET(PathEleme, s.elemeURLCheck)
	e.GET(PathHealthz, func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET(PathReadyz, func(c echo.Context) error {
		if err := s.c.Ready(); err != nil {
			return c.String(http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
		}
		return c.String(http.StatusOK, "ready\n")
	})
	return e
}

// platform describes how one platform's replies look.
type platform struct {
	name string
	// headers are every record's headers (content-type, platform), shared read-only: a record
	// with a traceparent gets a copy with it appended.
	headers []kafka.Header
	success []byte // pre-encoded: the hot path encodes nothing
	// busy and unavailable are the 503 replies of shed callbacks, pre-encoded as fail would
	// encode them: shedding must cost less than accepting.
	busy, unavailable []byte
	// codes maps a status to Dianwoda's gateway code; nil means Eleme's {"message"} shape.
	codes map[int]string
}

var (
	dwdShape = platform{name: schemas.PlatformDianwoda, headers: recordHeaders(schemas.PlatformDianwoda), success: []byte(`{"code":"success"}`), codes: map[int]string{
		http.StatusBadRequest:            "sys.invalid_parameter",
		http.StatusRequestEntityTooLarge: "sys.invalid_parameter",
		http.StatusUnauthorized:          "sys.invalid_signature",
		http.StatusServiceUnavailable:    "api.unknown_error",
		http.StatusInternalServerError:   "sys.unknown_error",
		http.StatusMethodNotAllowed:      "sys.api_not_existed",
		http.StatusNotFound:              "sys.api_not_existed",
	}}
	elmShape = platform{name: schemas.PlatformEleme, headers: recordHeaders(schemas.PlatformEleme), success: []byte(`{"message":"ok"}`)}
)

// Messages of the 503 refusals.
const (
	msgBusy      = "too busy, retry later"
	msgNotStored = "not stored, retry later"
)

func init() {
	for _, p := range []*platform{&dwdShape, &elmShape} {
		p.busy = p.failBody(http.StatusServiceUnavailable, msgBusy)
		p.unavailable = p.failBody(http.StatusServiceUnavailable, msgNotStored)
	}
}

// failBody is the body of a refusal in the platform's shape: encoding/json, then a newline, as
// echo's c.JSON would write it, but the same bytes whatever the request's query (c.JSON indents
// for a `pretty` parameter) and without parsing that query.
func (p platform) failBody(status int, message string) []byte {
	v := map[string]string{"message": message}
	if p.codes != nil {
		v["code"] = p.codes[status]
		if v["code"] == "" {
			v["code"] = "sys.unknown_error"
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // two strings
	}
	return append(b, '\n')
}

// fail answers status in the platform's shape. message is shown to the caller: it never holds
// a request value, a secret or a signature.
func (s *Server) fail(c echo.Context, p platform, status int, outcome, message string) error {
	st := stateOf(c)
	st.outcome, st.reason = outcome, message
	return c.JSONBlob(status, p.failBody(status, message))
}

func (s *Server) ok(c echo.Context, p platform, outcome string) error {
	stateOf(c).outcome = outcome
	return c.JSONBlob(http.StatusOK, p.success)
}

// notStored answers a callback Kafka did not take, or would not (Admit): busy when the writes
// in flight are at their bound, kafka_unavailable otherwise; 503 either way, so the platform
// retries.
func (s *Server) notStored(c echo.Context, p platform, err error) error {
	st := stateOf(c)
	st.err = err
	if errors.Is(err, publish.ErrBusy) {
		st.outcome, st.reason = OutcomeBusy, msgBusy
		return c.JSONBlob(http.StatusServiceUnavailable, p.busy)
	}
	st.outcome, st.reason = OutcomeUnavailable, msgNotStored
	return c.JSONBlob(http.StatusServiceUnavailable, p.unavailable)
}

// discardBody reads what the caller is still sending and drops it through a small pooled
// buffer (never held), so the caller gets the reply instead of a reset connection. ReadTimeout
// and MaxBody bound how long that takes.
func (s *Server) discardBody(c echo.Context) {
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(c.Response(), c.Request().Body, s.c.MaxBody))
}

// admission decides, before the handler reads anything, whether a callback can be taken now.
// First the Publisher's Admit (Admitter): when a write would be refused, the callback is answered
// 503 (busy or kafka_unavailable) with its body discarded, unread and unverified.
// Then the body-memory budget: the request's body size (its Content-Length, or MaxBody when it is
// not known) is reserved before the handler reads anything and given back when the request is
// answered. When the budget is spent the request is answered 503, its body discarded without
// being kept: memory stays bounded however many uploads arrive, before any bound on Kafka writes.
// Empty bodies and bodies over MaxBody are answered by the handler (400, Eleme's URL check, 413)
// without reading, so pass both.
func (s *Server) admission(p platform) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			n := c.Request().ContentLength
			if n < 0 {
				n = s.c.MaxBody
			}
			if n == 0 || n > s.c.MaxBody {
				return next(c)
			}
			if s.admit != nil {
				if err := s.admit(); err != nil {
					stateOf(c).platform = p.name
					s.discardBody(c)
					return s.notStored(c, p, err)
				}
			}
			if !s.bodies.TryAcquire(n) {
				st := stateOf(c)
				st.platform, st.outcome, st.reason = p.name, OutcomeBodyMemory, msgBusy
				s.discardBody(c)
				return c.JSONBlob(http.StatusServiceUnavailable, p.busy)
			}
			s.bodyHeld.Add(float64(n))
			defer func() {
				s.bodyHeld.Sub(float64(n))
				s.bodies.Release(n)
			}()
			return next(c)
		}
	}
}

// readBody reads at most MaxBody bytes. A non-zero status is the refusal to send, with its
// outcome and message.
func (s *Server) readBody(c echo.Context) (body []byte, status int, outcome, msg string) {
	req := c.Request()
	if req.ContentLength > s.c.MaxBody {
		return nil, http.StatusRequestEntityTooLarge, OutcomeTooLarge, s.tooLarge
	}
	var err error
	if n := req.ContentLength; n > 0 {
		// The usual case: one allocation of the announced size instead of io.ReadAll's growth
		// from 512 bytes. A body shorter than announced is an error; a longer one is cut by
		// net/http at the announced length, which is at most MaxBody (checked above), so no
		// MaxBytesReader is needed. Reading the last announced byte lets net/http see the
		// body's end, so closing it costs nothing and spares the reply net/http's discard of a
		// body it would otherwise think unread (an io.CopyN before the status line).
		body = make([]byte, n)
		if _, err = io.ReadFull(req.Body, body); err == nil {
			err = req.Body.Close()
		}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.c.MaxBody))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, OutcomeTooLarge, s.tooLarge
		}
		return nil, http.StatusBadRequest, OutcomeMalformed, "body could not be read"
	}
	stateOf(c).bytesIn = len(body)
	return body, 0, "", ""
}

func (s *Server) unconfigured(c echo.Context, p platform, variable string) error {
	stateOf(c).reason = variable + " is not set"
	s.c.Log.Error("callback route not configured", zap.String("platform", p.name), zap.String("missing", variable))
	return s.fail(c, p, http.StatusServiceUnavailable, OutcomeUnconfigured, "callback route not configured")
}

func (s *Server) signatureFailed(c echo.Context, p platform, err error) error {
	reason := "mismatch"
	var se *callback.SignatureError
	if errors.As(err, &se) {
		reason = se.Reason
	}
	s.sigFails.WithLabelValues(p.name, reason).Inc()
	msg := "invalid signature"
	if se != nil {
		msg = se.Detail
	}
	return s.fail(c, p, http.StatusUnauthorized, OutcomeBadSignature, msg)
}

func (s *Server) malformed(c echo.Context, p platform, err error) error {
	return s.fail(c, p, http.StatusBadRequest, OutcomeMalformed, err.Error())
}

func (s *Server) dianwoda(c echo.Context) error {
	p := dwdShape
	st := stateOf(c)
	st.platform = p.name
	if !s.dwd.Configured() {
		return s.unconfigured(c, p, "DIANWODA_SECRETS")
	}
	body, status, outcome, msg := s.readBody(c)
	if status != 0 {
		return s.fail(c, p, status, outcome, msg)
	}
	q := c.QueryParams()
	if err := s.dwd.Verify(q, body); err != nil {
		return s.signatureFailed(c, p, err)
	}
	parsed, err := dianwoda.Parse(q, body)
	if err != nil {
		return s.malformed(c, p, err)
	}
	return s.publish(c, p, parsed, q, body)
}

func (s *Server) eleme(c echo.Context) error {
	p := elmShape
	st := stateOf(c)
	st.platform = p.name
	if !s.elm.Configured() {
		return s.unconfigured(c, p, "ELEME_SECRETS")
	}
	body, status, outcome, msg := s.readBody(c)
	if status != 0 {
		return s.fail(c, p, status, outcome, msg)
	}
	if len(trimSpace(body)) == 0 {
		return s.ok(c, p, OutcomeURLCheck)
	}
	push, err := eleme.ParsePush(body)
	if err != nil {
		return s.malformed(c, p, err)
	}
	if err := s.elm.Verify(push); err != nil {
		return s.signatureFailed(c, p, err)
	}
	parsed, err := eleme.Key(push)
	if err != nil {
		return s.malformed(c, p, err)
	}
	var q url.Values // an Eleme push has no query as a rule: do not make an empty map for it
	if c.Request().URL.RawQuery != "" {
		q = c.QueryParams()
	}
	return s.publish(c, p, parsed, q, body)
}

// elemeURLCheck answers Eleme's reachability probe (GET) without writing anything.
func (s *Server) elemeURLCheck(c echo.Context) error {
	p := elmShape
	stateOf(c).platform = p.name
	if !s.elm.Configured() {
		return s.unconfigured(c, p, "ELEME_SECRETS")
	}
	return s.ok(c, p, OutcomeURLCheck)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// recordHeaders are a platform's constant record headers (a slice literal: its capacity is its
// length).
func recordHeaders(platform string) []kafka.Header {
	return []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte("application/json")},
		{Key: "platform", Value: []byte(platform)},
	}
}

// keptHeaders are the request headers copied into the envelope; nothing else (no auth, no
// cookies). Canonical names (TestKeptHeadersCanonical): publish indexes the header map with them.
var keptHeaders = [...]string{"Content-Type", "User-Agent", "X-Request-Id", "Traceparent", "Tracestate"}

func (s *Server) publish(c echo.Context, p platform, parsed callback.Parsed, q url.Values, body []byte) error {
	st := stateOf(c)
	received := st.start // when serving the request began
	st.orderID = parsed.OrderID
	st.key = parsed.Key
	req := c.Request()
	// A request id made here belongs to this request alone, so it serves as the record's id too
	// (the reply's X-Request-Id is then the ingress_id); a caller's id may repeat on a retry.
	id := st.requestID
	if !st.ownID {
		id = s.c.NewID()
	}
	env := schemas.RawEnvelope{
		Version:    schemas.RawEnvelopeVersion,
		IngressID:  id,
		Platform:   p.name,
		OrderID:    parsed.OrderID,
		ReceivedAt: schemas.At(received),
		Body:       body,
	}
	if len(q) > 0 {
		env.Query = q
	}
	var hdrBuf [len(keptHeaders)]envHeader
	hdrs := envelopeHeaders(hdrBuf[:0], req.Header)
	st.ingressID = env.IngressID
	// Encoded without reflection or a headers map, exactly as json.Marshal would
	// (appendEnvelope): the envelope is built for every callback.
	value := appendEnvelope(make([]byte, 0, envelopeSize(&env, hdrs)), &env, hdrs)
	headers := p.headers // shared read-only; full capacity, so an append copies
	if vs := req.Header["Traceparent"]; len(vs) > 0 && vs[0] != "" {
		headers = append(headers, kafka.Header{Key: schemas.HeaderTraceparent, Value: []byte(vs[0])})
	}
	msg := kafka.Message{Key: []byte(parsed.Key), Value: value, Headers: headers, Time: received}
	// The write does not end when the caller hangs up: a half-done write would still count
	// against readiness and may be stored anyway. Publish bounds it by its own deadline.
	if err := s.c.Publisher.Publish(context.WithoutCancel(req.Context()), msg); err != nil {
		return s.notStored(c, p, err)
	}
	return s.ok(c, p, OutcomeOK)
}

// headerName is the envelope's spelling: the canonical form, but W3C trace headers lower-case.
func headerName(h string) string {
	switch h {
	case "Traceparent":
		return "traceparent"
	case "Tracestate":
		return "tracestate"
	}
	return h
}

// errorHandler answers router errors (404, 405) and anything a handler returned unanswered.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := http.StatusInternalServerError
	msg := "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		msg = http.StatusText(status)
	}
	st := stateOf(c)
	if st.outcome == "" {
		st.outcome = "error"
		st.err = err
	}
	p := elmShape // the generic {"message"} shape, for any path but Dianwoda's
	if c.Path() == PathDianwoda || c.Request().URL.Path == PathDianwoda {
		p = dwdShape
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSONBlob(status, p.failBody(status, msg))
}
