//go:build !linux

package main

import "errors"

// Elsewhere than Linux the shell reads lines without editing.

func isTerminal(int) bool { return false }

func makeRaw(int) (func() error, error) { return nil, errors.New("raw mode not supported") }

func termWidth(int) int { return 0 }
