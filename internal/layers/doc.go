// Package layers holds no code: its test keeps the package map of the
// README true. It lists, for every package of the module, which of the
// module's packages it may import and whether it must stay free of I/O and
// networking, and fails when the code disagrees (go list -deps, run once for
// the whole module).
package layers
