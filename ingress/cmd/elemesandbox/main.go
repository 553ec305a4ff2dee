// Command elemesandbox runs the Eleme OpenAPI sandbox over HTTP (see internal/elemesandbox):
// SANDBOX_ADDR (default 127.0.0.1:8091), apps from ELEME_SANDBOX_APPS and/or repeated -app flags
// ("appId=appKey:secret"; default the demo app 62933118=demo-app-key:demo-eleme-secret, the
// appId and secret the demo ingress verifies pushes with).
package main

import (
	"github.com/orderpipe/pipeline/ingress/internal/elemesandbox"
	"github.com/orderpipe/pipeline/plumbing/sandbox"
)

// DemoApps is the demo app of `make run` and docker-compose.
const DemoApps = "62933118=demo-app-key:demo-eleme-secret"

var command = sandbox.Command[elemesandbox.App, *elemesandbox.Sandbox]{
	Name: "elemesandbox", Addr: "127.0.0.1:8091", API: "/api/v1", Item: "app", ItemForm: "appId=appKey:secret",
	ItemsEnv: "ELEME_SANDBOX_APPS", Sep: ",", DemoItems: DemoApps,
	Parse: elemesandbox.ParseApps, New: elemesandbox.New, Key: func(a elemesandbox.App) string { return a.AppID },
}

func main() { command.Main() }
