// Command elemesandbox runs the Eleme OpenAPI sandbox over HTTP (see internal/elemesandbox):
// SANDBOX_ADDR (default 127.0.0.1:8091), apps from ELEME_SANDBOX_APPS and/or repeated -app flags
// ("appId=appKey:secret"; default the demo app 62933118=demo-app-key:demo-eleme-secret, the
// appId and secret the demo ingress verifies pushes with).
package main

import "github.com/orderpipe/pipeline/ingress/internal/elemesandbox"

func main() { elemesandbox.Command.Main() }
