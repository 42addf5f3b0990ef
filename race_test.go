//go:build race

package qmp_test

// raceEnabled scales down tests whose size the race detector makes slow.
const raceEnabled = true
