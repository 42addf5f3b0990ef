//go:build !unix

package qmptest

// Without unix descriptors no fd arrives with a command.

var cmsgSpace = 0

func unixRights([]byte) []int { return nil }
