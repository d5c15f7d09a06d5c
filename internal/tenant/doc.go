// Package tenant is the domain of the project: Acronis tenants, their kinds,
// their MFA states and ids, and the users whose TOTP decides who a change of
// the switch locks out. It imports nothing of the project, and everything
// else (policy, configuration, the client, the triggers) speaks its words.
package tenant
