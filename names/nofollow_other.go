//go:build !unix

package names

const noFollow = 0
