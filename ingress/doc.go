// Command ingress receives Dianwoda and Eleme status callbacks, verifies their signatures and
// writes each one, untouched, to callbacks.raw.v1 before it answers the platform's "success".
package main
