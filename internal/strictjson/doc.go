// Package strictjson decodes untrusted JSON objects more strictly than
// encoding/json: one object, every key once, nothing after it. A body that a
// proxy, a log reader or a later version of this code could read differently
// is refused instead of guessed at. The webhook, the worker and the sweep parse
// their inputs with it.
package strictjson
