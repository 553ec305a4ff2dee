package ddsandbox

import "github.com/orderpipe/pipeline/plumbing/sandbox"

// Command is cmd/ddsandbox: SANDBOX_ADDR (default 127.0.0.1:8090), shops from SANDBOX_SHOPS and
// repeated -shop flags, the demo shop (DemoShops) when neither gives any.
var Command = sandbox.Command[Shop, *Sandbox]{
	Name: "ddsandbox", Addr: "127.0.0.1:8090", API: "/openapi/rest", Item: "shop", ItemForm: "appkey=secret[,allow_success_to_failure][,session=S]",
	ItemsEnv: "SANDBOX_SHOPS", Sep: ";", DemoItems: DemoShops,
	Parse: ParseShops, New: New, Key: func(s Shop) string { return s.AppKey },
}

// DemoShops is the demo shop of the default routing table (docs/specs/platforms.md §3.2's made-up values).
const DemoShops = "2100000000=test_secret"
