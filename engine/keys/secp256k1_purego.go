//go:build !cgo || purego

package keys

// Without cgo (or with -tags purego), Koinos recovery runs on decred's
// pure-Go secp256k1.
var secpBuilt = []secpImpl{secpDecred}
