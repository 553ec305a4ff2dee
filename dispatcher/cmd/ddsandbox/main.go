// Command ddsandbox runs the Dangdang distristatus.update sandbox over HTTP (see
// internal/ddsandbox): SANDBOX_ADDR (default 127.0.0.1:8090), shops from SANDBOX_SHOPS and/or
// repeated -shop flags ("appkey=secret[,allow_success_to_failure][,session=S]"; default the demo
// shop 2100000000=test_secret).
package main

import "github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"

func main() { ddsandbox.Command.Main() }
