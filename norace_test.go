//go:build !race

package qmp_test

const raceEnabled = false
