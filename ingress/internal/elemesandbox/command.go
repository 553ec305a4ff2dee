package elemesandbox

import "github.com/orderpipe/pipeline/plumbing/sandbox"

// Command is cmd/elemesandbox: SANDBOX_ADDR (default 127.0.0.1:8091), apps from
// ELEME_SANDBOX_APPS and repeated -app flags, the demo app (DemoApps) when neither gives any.
var Command = sandbox.Command[App, *Sandbox]{
	Name: "elemesandbox", Addr: "127.0.0.1:8091", API: "/api/v1", Item: "app", ItemForm: "appId=appKey:secret",
	ItemsEnv: "ELEME_SANDBOX_APPS", Sep: ",", DemoItems: DemoApps,
	Parse: ParseApps, New: New, Key: func(a App) string { return a.AppID },
}

// DemoApps is the demo app of `make run` and docker-compose.
const DemoApps = "62933118=demo-app-key:demo-eleme-secret"
