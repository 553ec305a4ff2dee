// Command normalizer consumes raw platform callbacks, drops duplicates and emits unified status events.
package main
