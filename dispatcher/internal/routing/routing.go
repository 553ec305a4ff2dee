// Package routing decides where each unified status event goes: the routing table sends an event
// to zero or more destinations (Kafka topics, Dangdang shops) by platform, kind, status and an
// order_id pattern, and derives the Dangdang order id from the pattern's captures. The package is
// pure: it reads bytes and events and touches no network.
package routing

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/orderpipe/pipeline/schemas"
)

// List is a YAML list of strings that may also be written as one scalar.
type List []string

// UnmarshalYAML accepts "a" as well as [a, b].
func (l *List) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = List{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// Match selects events; an empty field matches everything.
type Match struct {
	Platform List `yaml:"platform"`
	Kind     List `yaml:"kind"`
	Status   List `yaml:"status"`
	// OrderID is a regular expression over the event's order_id (Go RE2 syntax, anchored as
	// written); its captures feed the Dangdang order id template.
	OrderID string `yaml:"order_id"`
}

// DangdangTo sends the event to a Dangdang shop.
type DangdangTo struct {
	// Shop names a shop of the shops configuration.
	Shop string `yaml:"shop"`
	// OrderID is the Dangdang order id template over match.order_id's captures (regexp.Expand
	// syntax: ${order}, $1). Default "${order}".
	OrderID string `yaml:"order_id"`
}

// To is a destination: exactly one of Topic and Dangdang.
type To struct {
	// Topic may reference ${TOPIC_DELIVERY}, ${TOPIC_LIFECYCLE}, ${TOPIC_REFUND} (the configured names).
	Topic    string      `yaml:"topic"`
	Dangdang *DangdangTo `yaml:"dangdang"`
}

// Route is one entry of the table.
type Route struct {
	Name  string `yaml:"name"`
	Match Match  `yaml:"match"`
	To    To     `yaml:"to"`

	re *regexp.Regexp
}

// Table is a validated routing table.
type Table struct {
	Routes []Route `yaml:"routes"`
}

// DangdangTarget is one Dangdang write-back an event asks for.
type DangdangTarget struct {
	Route   string
	Shop    string
	OrderID string
}

// Destinations is where one event goes.
type Destinations struct {
	Topics   []string
	Dangdang []DangdangTarget
}

var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
var templateRef = regexp.MustCompile(`\$(\{[^}]*\}|[a-zA-Z0-9_]+)`)

// Load parses and validates a table. vars are the ${NAME} values topics may reference; shops are
// the configured shop names. The error names every bad entry.
func Load(data []byte, vars map[string]string, shops map[string]bool) (*Table, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var t Table
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("routing table: %w", err)
	}
	if len(t.Routes) == 0 {
		return nil, errors.New("routing table: no routes")
	}
	var errs []error
	seen := map[string]bool{}
	for i := range t.Routes {
		r := &t.Routes[i]
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("routing table: routes[%d] %q: %s", i, r.Name, fmt.Sprintf(format, args...)))
		}
		if r.Name == "" {
			fail("name is required")
		} else if seen[r.Name] {
			fail("duplicate name")
		}
		seen[r.Name] = true
		for _, p := range r.Match.Platform {
			if p != schemas.PlatformDianwoda && p != schemas.PlatformEleme {
				fail("match.platform: unknown platform %q", p)
			}
		}
		for _, k := range r.Match.Kind {
			if k != schemas.KindDelivery && k != schemas.KindOrder && k != schemas.KindRefund {
				fail("match.kind: unknown kind %q", k)
			}
		}
		for _, s := range r.Match.Status {
			if strings.TrimSpace(s) == "" {
				fail("match.status: empty status")
			}
		}
		if r.Match.OrderID != "" {
			re, err := regexp.Compile(r.Match.OrderID)
			if err != nil {
				fail("match.order_id: %v", err)
			}
			r.re = re
		}
		switch {
		case r.To.Topic != "" && r.To.Dangdang != nil:
			fail("to: want exactly one of topic and dangdang, got both")
		case r.To.Topic == "" && r.To.Dangdang == nil:
			fail("to: want one of topic and dangdang")
		case r.To.Topic != "":
			var bad []string
			r.To.Topic = expandVars(r.To.Topic, vars, &bad)
			for _, b := range bad {
				fail("to.topic: unknown variable ${%s}", b)
			}
			if len(bad) == 0 && !topicName.MatchString(r.To.Topic) {
				fail("to.topic: %q is not a valid topic name", r.To.Topic)
			}
		default:
			d := r.To.Dangdang
			if d.Shop == "" {
				fail("to.dangdang.shop is required")
			} else if !shops[d.Shop] {
				fail("to.dangdang.shop: unknown shop %q (configured: %s)", d.Shop, strings.Join(sortedKeys(shops), ", "))
			}
			if d.OrderID == "" {
				d.OrderID = "${order}"
			}
			if r.re == nil {
				fail("to.dangdang needs match.order_id, the pattern the Dangdang order id is derived from")
				break
			}
			for _, ref := range templateRef.FindAllStringSubmatch(d.OrderID, -1) {
				name := strings.Trim(ref[1], "{}")
				if !hasGroup(r.re, name) {
					fail("to.dangdang.order_id: %s refers to no capture of match.order_id %q", ref[0], r.Match.OrderID)
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &t, nil
}

func hasGroup(re *regexp.Regexp, name string) bool {
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err == nil && fmt.Sprint(n) == name {
		return n <= re.NumSubexp()
	}
	return re.SubexpIndex(name) >= 0
}

func expandVars(s string, vars map[string]string, bad *[]string) string {
	return templateRef.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(strings.TrimPrefix(m, "$"), "{}")
		v, ok := vars[name]
		if !ok {
			*bad = append(*bad, name)
			return m
		}
		return v
	})
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func in(list List, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Route returns the destinations of ev: every matching route contributes; a topic or a Dangdang
// (shop, order) appears once however many routes name it.
func (t *Table) Route(ev *schemas.StatusEvent) Destinations {
	var d Destinations
	seenTopic := map[string]bool{}
	seenDD := map[[2]string]bool{}
	for i := range t.Routes {
		r := &t.Routes[i]
		if !in(r.Match.Platform, ev.Platform) || !in(r.Match.Kind, ev.Kind) || !in(r.Match.Status, ev.Status) {
			continue
		}
		var sub []int
		if r.re != nil {
			if sub = r.re.FindStringSubmatchIndex(ev.OrderID); sub == nil {
				continue
			}
		}
		if r.To.Topic != "" {
			if !seenTopic[r.To.Topic] {
				seenTopic[r.To.Topic] = true
				d.Topics = append(d.Topics, r.To.Topic)
			}
			continue
		}
		id := string(r.re.ExpandString(nil, r.To.Dangdang.OrderID, ev.OrderID, sub))
		k := [2]string{r.To.Dangdang.Shop, id}
		if id == "" || seenDD[k] {
			continue
		}
		seenDD[k] = true
		d.Dangdang = append(d.Dangdang, DangdangTarget{Route: r.Name, Shop: r.To.Dangdang.Shop, OrderID: id})
	}
	return d
}
