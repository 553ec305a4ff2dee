// Command elemesandbox runs the Eleme OpenAPI sandbox over HTTP (see internal/elemesandbox):
// SANDBOX_ADDR (default 127.0.0.1:8091), apps from ELEME_SANDBOX_APPS and/or repeated -app flags
// ("appId=appKey:secret"; default the demo app 62933118=demo-app-key:demo-eleme-secret, the
// appId and secret the demo ingress verifies pushes with).
package main

import (
	"net/http"

	"github.com/orderpipe/pipeline/ingress/internal/elemesandbox"
	"github.com/orderpipe/pipeline/plumbing/sandbox"
)

// DemoApps is the demo app of `make run` and docker-compose.
const DemoApps = "62933118=demo-app-key:demo-eleme-secret"

var command = sandbox.Command{
	Name: "elemesandbox", Addr: "127.0.0.1:8091", API: "/api/v1",
	Item: "app", ItemUsage: "appId=appKey:secret (repeatable; adds to ELEME_SANDBOX_APPS)",
	ItemsEnv: "ELEME_SANDBOX_APPS", Sep: ",", DemoItems: DemoApps,
	New: func(spec string) (http.Handler, []string, error) {
		apps, err := elemesandbox.ParseApps(spec)
		if err != nil {
			return nil, nil, err
		}
		ids := make([]string, len(apps))
		for i, a := range apps {
			ids[i] = a.AppID
		}
		return elemesandbox.New(apps...).Handler(), ids, nil
	},
}

func main() { command.Main() }
