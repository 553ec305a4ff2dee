package server

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"

	"github.com/orderpipe/pipeline/schemas"
	"github.com/orderpipe/pipeline/schemas/jsonenc"
)

// envHeader is one kept request header, named as the envelope names it.
type envHeader struct{ name, value string }

// keptHeaderNames are keptHeaders as the envelope spells them (headerName), in the same order.
var keptHeaderNames = func() []string {
	out := make([]string, len(keptHeaders))
	for i, h := range keptHeaders {
		out[i] = headerName(h)
	}
	return out
}()

// envelopeHeaders appends the kept headers of h that are set (their first value) to dst, in
// the order of keptHeaders, which is their envelope names' order (TestKeptHeadersInNameOrder):
// the order encoding/json writes a map's keys in.
func envelopeHeaders(dst []envHeader, h http.Header) []envHeader {
	for i, k := range keptHeaders {
		// Indexed, not Header.Get: the names are canonical already, so nothing to canonicalise.
		if vs := h[k]; len(vs) > 0 && vs[0] != "" {
			dst = append(dst, envHeader{keptHeaderNames[i], vs[0]})
		}
	}
	return dst
}

// appendEnvelope appends env exactly as json.Marshal encodes it (field order, omitempty,
// string escaping, base64 body; TestAppendEnvelopeMatchesMarshal, FuzzAppendEnvelope), with
// hdrs, in name order, as its Headers (env.Headers is not read). Without reflection or the
// headers map it is a fraction of json.Marshal's allocations for the envelope every callback
// carries. A field added to schemas.RawEnvelope fails TestAppendEnvelopeCoversEveryField until
// it is written here.
func appendEnvelope(b []byte, env *schemas.RawEnvelope, hdrs []envHeader) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(env.Version), 10)
	b = append(b, `,"ingress_id":`...)
	b = jsonenc.AppendString(b, env.IngressID)
	b = append(b, `,"platform":`...)
	b = jsonenc.AppendString(b, env.Platform)
	b = append(b, `,"order_id":`...)
	b = jsonenc.AppendString(b, env.OrderID)
	b = append(b, `,"received_at":"`...)
	b = schemas.AppendTime(b, env.ReceivedAt.Time)
	b = append(b, '"')
	if len(env.Query) > 0 {
		b = append(b, `,"query":{`...)
		keys := make([]string, 0, len(env.Query))
		for k := range env.Query {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			vs := env.Query[k]
			if vs == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '[')
			for j, v := range vs {
				if j > 0 {
					b = append(b, ',')
				}
				b = jsonenc.AppendString(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(hdrs) > 0 {
		b = append(b, `,"headers":{`...)
		for i, h := range hdrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, h.name)
			b = append(b, ':')
			b = jsonenc.AppendString(b, h.value)
		}
		b = append(b, '}')
	}
	b = append(b, `,"body":`...)
	if env.Body == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, env.Body)
		b = append(b, '"')
	}
	if env.Source != "" {
		b = append(b, `,"source":`...)
		b = jsonenc.AppendString(b, env.Source)
	}
	return append(b, '}')
}

// envelopeSize is about what appendEnvelope writes when nothing needs escaping, so that one
// allocation usually holds it.
func envelopeSize(env *schemas.RawEnvelope, hdrs []envHeader) int {
	n := 160 + len(env.IngressID) + len(env.Platform) + len(env.OrderID) + len(env.Source) +
		base64.StdEncoding.EncodedLen(len(env.Body))
	for k, vs := range env.Query {
		n += len(k) + 6
		for _, v := range vs {
			n += len(v) + 3
		}
	}
	for _, h := range hdrs {
		n += len(h.name) + len(h.value) + 6
	}
	return n
}
