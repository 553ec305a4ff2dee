// Command ddsandbox runs the Dangdang distristatus.update sandbox over HTTP (see
// internal/ddsandbox): SANDBOX_ADDR (default 127.0.0.1:8090), shops from SANDBOX_SHOPS and/or
// repeated -shop flags ("appkey=secret[,allow_success_to_failure][,session=S]"; default the demo
// shop 2100000000=test_secret).
package main

import (
	"net/http"

	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/plumbing/sandbox"
)

// DemoShops is the demo shop of the default routing table (docs/specs/platforms.md §3.2's made-up values).
const DemoShops = "2100000000=test_secret"

var command = sandbox.Command{
	Name: "ddsandbox", Addr: "127.0.0.1:8090", API: "/openapi/rest",
	Item: "shop", ItemUsage: "appkey=secret[,allow_success_to_failure][,session=S] (repeatable; adds to SANDBOX_SHOPS)",
	ItemsEnv: "SANDBOX_SHOPS", Sep: ";", DemoItems: DemoShops,
	New: func(spec string) (http.Handler, []string, error) {
		shops, err := ddsandbox.ParseShops(spec)
		if err != nil {
			return nil, nil, err
		}
		keys := make([]string, len(shops))
		for i, s := range shops {
			keys[i] = s.AppKey
		}
		return ddsandbox.New(shops...).Handler(), keys, nil
	},
}

func main() { command.Main() }
