// Command dispatcher fans unified status events out to downstream topics and writes delivery
// results back to Dangdang.
package main
