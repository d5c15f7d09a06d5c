// Package config reads every environment variable of the deployed functions in
// one place, so that a bad value stops a function at init with one message that
// names the variable and what it accepts, instead of failing later mid-sweep.
package config
