// Command ddsandbox runs the Dangdang distristatus.update sandbox over HTTP (see
// internal/ddsandbox): SANDBOX_ADDR (default 127.0.0.1:8090), shops from SANDBOX_SHOPS and/or
// repeated -shop flags ("appkey=secret[,allow_success_to_failure][,session=S]"; default the demo
// shop 2100000000=test_secret).
package main

import (
	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/plumbing/sandbox"
)

// DemoShops is the demo shop of the default routing table (docs/specs/platforms.md §3.2's made-up values).
const DemoShops = "2100000000=test_secret"

var command = sandbox.Command[ddsandbox.Shop, *ddsandbox.Sandbox]{
	Name: "ddsandbox", Addr: "127.0.0.1:8090", API: "/openapi/rest", Item: "shop", ItemForm: "appkey=secret[,allow_success_to_failure][,session=S]",
	ItemsEnv: "SANDBOX_SHOPS", Sep: ";", DemoItems: DemoShops,
	Parse: ddsandbox.ParseShops, New: ddsandbox.New, Key: func(s ddsandbox.Shop) string { return s.AppKey },
}

func main() { command.Main() }
