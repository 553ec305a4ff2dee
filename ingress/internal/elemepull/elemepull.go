// Package elemepull is the Eleme compensation poller: for every configured Eleme app it pulls the
// pushes Eleme failed to deliver (eleme.msgNew.getPushFailMsg), writes each one to
// callbacks.raw.v1 exactly as the ingress would have written its push (the same key, the same
// envelope, the push body rebuilt and re-signed, marked source "pull"), and confirms them
// (eleme.msgNew.confirmPullMsg) only after Kafka acknowledged the write (acks=all).
//
// Guarantees:
//   - Nothing is lost: a message is confirmed only after its record is durable. A failed write,
//     a crash between the write and the confirm, or a confirm that fails leaves the message held
//     by Eleme; it is pulled and written again, and the duplicate collapses downstream (the
//     normalizer's dedup by event_id, which does not depend on how the callback arrived).
//   - One poller per app at a time across replicas: each app's loop runs only while it holds
//     that app's Redis lease (Lease, with a fencing token). A second instance waits as a standby
//     and takes over within a lease TTL when the first one stops; were two ever to poll at once,
//     each message would be written twice and still yield one event.
//   - Never a tight loop: rounds run every Interval (and at once on start); a failed call backs
//     off with the pipeline's retry policy, an EXCEED_LIMIT answer for at least RateLimitWait.
//   - Nothing stalls silently: an app whose rounds keep failing turns its readiness check false,
//     and elemepull_last_success_timestamp_seconds lets an alert page when an app has not been
//     polled successfully for minutes.
package elemepull

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/ingress/internal/elemeapi"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/schemas"
)

// Writer is the part of *kafka.Writer the poller uses: a synchronous write with RequireAll.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// API is the part of *elemeapi.Client the poller uses.
type API interface {
	GetPushFailMsg(ctx context.Context, app elemeapi.App, pageSize int) ([]elemeapi.Message, error)
	ConfirmPullMsg(ctx context.Context, app elemeapi.App, ids []json.RawMessage) error
}

// Readiness receives the poller's checks (ops.Readiness satisfies it).
type Readiness interface{ Set(name string, err error) }

// CheckRedis is the readiness check of the lease store; each app has the check "eleme_app:<appId>".
const CheckRedis = "redis"

// CheckApp is the readiness check name of one app.
func CheckApp(appID string) string { return "eleme_app:" + appID }

// Config configures New. Zero durations take the defaults in brackets.
type Config struct {
	Apps   []elemeapi.App
	API    API
	Writer Writer
	Redis  redis.UniversalClient
	// KeyPrefix prefixes the lease keys (REDIS_KEY_PREFIX).
	KeyPrefix string
	// Instance identifies this process in the lease (default a random UUID).
	Instance string
	// Interval between rounds [30 s].
	Interval time.Duration
	// PageSize per getPushFailMsg call [elemeapi.DefaultPageSize].
	PageSize int
	// MaxPages bounds one round [100]; the next round goes on where it stopped.
	MaxPages int
	// LeaseTTL [30 s]; the holder renews every third of it.
	LeaseTTL time.Duration
	// Backoff after a failed round [Min 1 s, Max 5 min].
	Backoff retry.Policy
	// RateLimitWait is the least wait after EXCEED_LIMIT [1 min].
	RateLimitWait time.Duration
	// FailAfter consecutive failed rounds make the app not ready [3].
	FailAfter int
	Metrics   *Metrics
	Ready     Readiness
	Log       *zap.Logger
	// Now and NewID are injectable for tests.
	Now   func() time.Time
	NewID func() string
}

// Poller runs one loop per app.
type Poller struct{ c Config }

// New returns a Poller; it checks nothing over the network.
func New(c Config) (*Poller, error) {
	if len(c.Apps) == 0 {
		return nil, errors.New("elemepull: no app configured")
	}
	if c.API == nil || c.Writer == nil || c.Redis == nil || c.Metrics == nil || c.Log == nil {
		return nil, errors.New("elemepull: API, Writer, Redis, Metrics and Log are required")
	}
	if c.Instance == "" {
		c.Instance = uuid.NewString()
	}
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.PageSize <= 0 {
		c.PageSize = elemeapi.DefaultPageSize
	}
	if c.MaxPages <= 0 {
		c.MaxPages = 100
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = time.Second
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = 5 * time.Minute
	}
	if c.RateLimitWait <= 0 {
		c.RateLimitWait = time.Minute
	}
	if c.FailAfter <= 0 {
		c.FailAfter = 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = func() string {
			id, err := uuid.NewV7()
			if err != nil {
				return uuid.NewString()
			}
			return id.String()
		}
	}
	if c.Ready == nil {
		c.Ready = nopReady{}
	}
	for _, a := range c.Apps {
		c.Metrics.init(a.AppID)
	}
	return &Poller{c: c}, nil
}

type nopReady struct{}

func (nopReady) Set(string, error) {}

// Run polls every app until ctx ends, then releases the leases it holds.
func (p *Poller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, app := range p.c.Apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runApp(ctx, app)
		}()
	}
	wg.Wait()
	return nil
}

// runApp is one app's loop: stand by until the lease is ours, then poll while it stays ours.
func (p *Poller) runApp(ctx context.Context, app elemeapi.App) {
	log := p.c.Log.With(zap.String("platform", schemas.PlatformEleme), zap.String("app_id", app.AppID))
	lease := NewLease(p.c.Redis, p.c.KeyPrefix, app.AppID, p.c.Instance, p.c.LeaseTTL)
	standby := retry.Policy{Min: p.c.LeaseTTL / 3, Max: p.c.LeaseTTL / 3}.New() // jittered, so standbys do not try in step
	redisBackoff := retry.Policy{Min: 200 * time.Millisecond, Max: 5 * time.Second}.New()
	p.c.Ready.Set(CheckApp(app.AppID), nil)
	for ctx.Err() == nil {
		held, err := lease.TryAcquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.c.Ready.Set(CheckRedis, err)
			p.c.Ready.Set(CheckApp(app.AppID), fmt.Errorf("lease store unreachable: %w", err))
			log.Warn("lease acquire failed", zap.Error(err))
			_ = retry.Sleep(ctx, redisBackoff.Next())
			continue
		}
		redisBackoff.Reset()
		p.c.Ready.Set(CheckRedis, nil)
		if !held {
			p.c.Metrics.leader.WithLabelValues(app.AppID).Set(0)
			p.c.Ready.Set(CheckApp(app.AppID), nil) // a healthy standby
			_ = retry.Sleep(ctx, standby.Next())
			continue
		}
		log.Info("lease acquired", zap.Int64("fencing_token", lease.Token()), zap.String("instance", p.c.Instance))
		p.c.Metrics.leader.WithLabelValues(app.AppID).Set(1)
		p.lead(ctx, app, lease, log)
		p.c.Metrics.leader.WithLabelValues(app.AppID).Set(0)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := lease.Release(rctx); err != nil {
			log.Warn("lease release failed", zap.Error(err))
		}
		cancel()
	}
}

// lead polls app while the lease is ours: a renewer extends it every TTL/3 and ends leadCtx
// when it is lost or cannot be renewed before it expires.
func (p *Poller) lead(ctx context.Context, app elemeapi.App, lease *Lease, log *zap.Logger) {
	leadCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop()
		p.renew(leadCtx, lease, log)
	}()
	defer wg.Wait()

	b := p.c.Backoff.New()
	failures := 0
	for leadCtx.Err() == nil {
		// The fencing check: the lease still holds this holding's token (a holder paused past
		// its TTL finds it taken and stops before pulling). Renew errors other than a lost
		// lease are the renewer's business.
		if err := lease.Renew(leadCtx); errors.Is(err, ErrLost) {
			log.Warn("lease lost before a round", zap.Int64("fencing_token", lease.Token()))
			return
		}
		err := p.round(leadCtx, app, log)
		if leadCtx.Err() != nil && err != nil {
			return // stopping or lease lost mid-round: whatever was not confirmed stays held
		}
		wait := p.c.Interval
		if err == nil {
			failures = 0
			b.Reset()
			p.c.Metrics.lastSuccess.WithLabelValues(app.AppID).Set(float64(p.c.Now().UnixMilli()) / 1000)
			p.c.Ready.Set(CheckApp(app.AppID), nil)
		} else {
			failures++
			wait = b.Next()
			if elemeapi.RateLimited(err) {
				wait = max(wait, p.c.RateLimitWait)
			}
			if failures >= p.c.FailAfter {
				p.c.Ready.Set(CheckApp(app.AppID), fmt.Errorf("%d rounds failed, last: %w", failures, err))
			}
			log.Warn("pull round failed", zap.Error(err), zap.Int("failures", failures), zap.Duration("wait", wait))
		}
		if retry.Sleep(leadCtx, wait) != nil {
			return
		}
	}
}

func (p *Poller) renew(ctx context.Context, lease *Lease, log *zap.Logger) {
	every := p.c.LeaseTTL / 3
	lastOK := time.Now()
	for retry.Sleep(ctx, every) == nil {
		rctx, cancel := context.WithTimeout(ctx, every)
		err := lease.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			lastOK = time.Now()
		case errors.Is(err, ErrLost):
			log.Warn("lease lost")
			return
		case ctx.Err() != nil:
			return
		default:
			// Redis unreachable: keep polling while the lease certainly has not expired yet.
			if time.Since(lastOK) >= p.c.LeaseTTL-every {
				log.Warn("lease not renewed before expiry, stepping down", zap.Error(err))
				return
			}
		}
	}
}

// round pulls pages until a short page (or MaxPages): each page is written, then confirmed.
func (p *Poller) round(ctx context.Context, app elemeapi.App, log *zap.Logger) error {
	m := p.c.Metrics
	for page := 0; page < p.c.MaxPages; page++ {
		msgs, err := p.c.API.GetPushFailMsg(ctx, app, p.c.PageSize)
		if err != nil && ctx.Err() != nil {
			return err // stopping, or the lease was lost: not a failure of Eleme
		}
		if err != nil {
			m.apiFailures.WithLabelValues(app.AppID, "getPushFailMsg", elemeapi.Label(err)).Inc()
			m.rounds.WithLabelValues(app.AppID, "api_error").Inc()
			return fmt.Errorf("get push fail msg: %w", err)
		}
		if len(msgs) == 0 {
			break
		}
		recs := make([]kafka.Message, 0, len(msgs))
		ids := make([]json.RawMessage, 0, len(msgs))
		for _, msg := range msgs {
			rec, err := p.record(app, msg)
			if err != nil {
				// Left held, not confirmed: an operator looks at it (runbook); never dropped.
				m.unreadable.WithLabelValues(app.AppID).Inc()
				log.Error("pulled message unreadable, left unconfirmed", zap.String("msg_id", msg.IDText), zap.Error(err))
				continue
			}
			recs = append(recs, rec)
			ids = append(ids, msg.ID)
		}
		if len(recs) > 0 {
			if err := p.c.Writer.WriteMessages(ctx, recs...); err != nil {
				m.kafkaFailures.WithLabelValues(app.AppID).Inc()
				m.rounds.WithLabelValues(app.AppID, "kafka_error").Inc()
				return fmt.Errorf("write pulled messages: %w", err)
			}
			m.pulled.WithLabelValues(app.AppID).Add(float64(len(recs)))
			if err := p.c.API.ConfirmPullMsg(ctx, app, ids); err != nil {
				if ctx.Err() != nil {
					return err // unconfirmed: pulled again by whoever polls next
				}
				m.apiFailures.WithLabelValues(app.AppID, "confirmPullMsg", elemeapi.Label(err)).Inc()
				m.rounds.WithLabelValues(app.AppID, "confirm_error").Inc()
				return fmt.Errorf("confirm pull msg: %w", err)
			}
			m.confirmed.WithLabelValues(app.AppID).Add(float64(len(ids)))
			log.Info("pulled and confirmed", zap.Int("messages", len(ids)))
		}
		if len(recs) < len(msgs) {
			// The readable ones are written and confirmed; the round still fails, so that
			// readiness and ElemePullStale say an operator must look (a page of unreadable
			// messages would otherwise hide the ones behind it for good, silently).
			m.rounds.WithLabelValues(app.AppID, "unreadable").Inc()
			return fmt.Errorf("%w: %d of %d", ErrUnreadable, len(msgs)-len(recs), len(msgs))
		}
		if len(msgs) < p.c.PageSize {
			break
		}
	}
	m.rounds.WithLabelValues(app.AppID, "ok").Inc()
	return nil
}

// ErrUnreadable fails a round that pulled messages it could not rebuild into push bodies.
var ErrUnreadable = errors.New("pulled messages left unconfirmed, unreadable")

// pushFields are the members of a push body (docs/specs/platforms.md §1.1), in the order of Eleme's
// examples; signature is appended last.
var pushFields = []string{"appId", "requestId", "type", "message", "shopId", "timestamp", "userId"}

// PushBody rebuilds the push body of a pulled message: the push's members taken verbatim from
// the message (numbers keep their digits), appId defaulting to the app's, and a signature
// computed with the app's secret exactly as Eleme signs pushes, so the body verifies like the
// push it stands for (and may be re-driven through the ingress).
func PushBody(app elemeapi.App, msg elemeapi.Message) ([]byte, eleme.Push, error) {
	fields := map[string]json.RawMessage{}
	for _, k := range pushFields {
		if v, ok := msg.Fields[k]; ok {
			fields[k] = v
		}
	}
	if _, ok := fields["appId"]; !ok {
		fields["appId"] = json.RawMessage(strconv.Quote(app.AppID))
		if _, err := strconv.ParseUint(app.AppID, 10, 64); err == nil {
			fields["appId"] = json.RawMessage(app.AppID)
		}
	}
	write := func(sig string) []byte {
		var b bytes.Buffer
		b.WriteByte('{')
		for _, k := range pushFields {
			v, ok := fields[k]
			if !ok {
				continue
			}
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			_ = json.Compact(&b, v)
		}
		if sig != "" {
			b.WriteString(`,"signature":` + strconv.Quote(sig))
		}
		b.WriteByte('}')
		return b.Bytes()
	}
	unsigned := write("")
	p, err := eleme.ParsePush(unsigned)
	if err != nil {
		return nil, eleme.Push{}, err
	}
	body := write(eleme.Sign(p.AppendBase(nil), app.Secret))
	signed, err := eleme.ParsePush(body)
	if err != nil {
		return nil, eleme.Push{}, err
	}
	return body, signed, nil
}

// record turns a pulled message into the callbacks.raw.v1 record its push would have made.
func (p *Poller) record(app elemeapi.App, msg elemeapi.Message) (kafka.Message, error) {
	body, push, err := PushBody(app, msg)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("rebuild push body: %w", err)
	}
	parsed, err := eleme.Key(push)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("key pulled message: %w", err)
	}
	now := p.c.Now()
	env := schemas.RawEnvelope{
		Version:    schemas.RawEnvelopeVersion,
		IngressID:  p.c.NewID(),
		Platform:   schemas.PlatformEleme,
		OrderID:    parsed.OrderID,
		ReceivedAt: schemas.At(now),
		Body:       body,
		Source:     schemas.SourcePull,
	}
	value, err := json.Marshal(env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode envelope: %w", err)
	}
	return kafka.Message{Key: []byte(parsed.Key), Value: value, Time: now, Headers: []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte("application/json")},
		{Key: "platform", Value: []byte(schemas.PlatformEleme)},
	}}, nil
}
