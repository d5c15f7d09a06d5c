package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// SNS is the part of the SNS client the publisher uses.
type SNS interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Publisher publishes notices to one topic.
type Publisher struct {
	SNS      SNS
	TopicARN string
}

// Notice is one message: its kind, the document, the subject and the text.
type Notice interface {
	event() string
	subject() string
	text() string
}

// Publish sends n. A notice that was not published is an error: the caller
// must not act as if it had been given.
func (p *Publisher) Publish(ctx context.Context, n Notice) error {
	doc, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("notify: encode %s: %w", n.event(), err)
	}
	msg, _ := json.Marshal(map[string]string{"default": string(doc), "email": n.text()}) // strings always encode
	_, err = p.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn:         aws.String(p.TopicARN),
		Subject:          aws.String(Subject(n.subject())),
		Message:          aws.String(string(msg)),
		MessageStructure: aws.String("json"),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"event": {DataType: aws.String("String"), StringValue: aws.String(n.event())},
		},
	})
	if err != nil {
		return fmt.Errorf("notify: publish %s to %s: %w", n.event(), p.TopicARN, err)
	}
	return nil
}

// maxSubject is SNS's bound on a subject: fewer than 100 characters.
const maxSubject = 99

// Subject makes s a subject SNS accepts: printable ASCII without line breaks,
// under 100 characters. Tenant names are typed by customers, in any script.
func Subject(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() == maxSubject {
			break
		}
		switch {
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		default:
			b.WriteByte('?')
		}
	}
	return strings.TrimSpace(b.String())
}

// User is a user in a grace_started notice.
type User struct {
	ID    string `json:"id"`
	Login string `json:"login"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

// GraceStarted tells that MFA will be enabled on a tenant at Deadline, and who
// must set up TOTP before then.
type GraceStarted struct {
	TenantID         string    `json:"tenant_id"`
	TenantName       string    `json:"tenant_name"`
	Deadline         time.Time `json:"deadline"`
	UsersCount       int       `json:"users_count"`
	UsersWithoutTOTP int       `json:"users_without_totp"`
	Users            []User    `json:"users"`
	UsersTruncated   bool      `json:"users_truncated"`
	SweepID          string    `json:"sweep_id"`
	// UsersNotListed is how many more the users listing counted than Users
	// holds: the email's "and N more". UsersWithoutTOTP comes from the
	// tenant's mfa/status, another answer, and need not match the listing.
	UsersNotListed int `json:"-"`
}

// MarshalJSON writes the document with its event name first.
func (g GraceStarted) MarshalJSON() ([]byte, error) {
	type doc GraceStarted
	users := g.Users
	if users == nil {
		users = []User{}
	}
	g.Users = users
	g.Deadline = g.Deadline.UTC().Truncate(time.Second)
	return marshal(g.event(), doc(g))
}

func (GraceStarted) event() string { return "grace_started" }

func (g GraceStarted) subject() string {
	return fmt.Sprintf("MFA on %s from %s: %d users must set up TOTP", g.TenantName, g.Deadline.UTC().Format("2006-01-02"), g.UsersWithoutTOTP)
}

func (g GraceStarted) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Two-factor authentication (MFA) will be turned on for %s (%s) at %s.\n\n",
		g.TenantName, g.TenantID, g.Deadline.UTC().Format(time.RFC1123))
	fmt.Fprintf(&b, "From then on, every user must log in with a one-time code (TOTP). %d of its %d users have not set up TOTP yet; "+
		"they will be asked to at their next login, and cannot log in until they do.\n", g.UsersWithoutTOTP, g.UsersCount)
	if len(g.Users) > 0 {
		b.WriteString("\nUsers without TOTP:\n")
		for _, u := range g.Users {
			fmt.Fprintf(&b, "  - %s", u.Login)
			if u.Name != "" {
				fmt.Fprintf(&b, " (%s)", u.Name)
			}
			if u.Email != "" {
				fmt.Fprintf(&b, " <%s>", u.Email)
			}
			b.WriteByte('\n')
		}
		if g.UsersTruncated {
			fmt.Fprintf(&b, "  … and %d more.\n", g.UsersNotListed)
		}
	}
	b.WriteString("\nAsk them to set up an authenticator app now, so that nobody is locked out.\n")
	return b.String()
}

// Enforced tells that MFA was enabled on a tenant whose grace ended.
type Enforced struct {
	TenantID         string    `json:"tenant_id"`
	TenantName       string    `json:"tenant_name"`
	NotifiedAt       time.Time `json:"notified_at"`
	UsersWithoutTOTP int       `json:"users_without_totp"`
	SweepID          string    `json:"sweep_id"`
}

// MarshalJSON writes the document with its event name first.
func (e Enforced) MarshalJSON() ([]byte, error) {
	type doc Enforced
	e.NotifiedAt = e.NotifiedAt.UTC().Truncate(time.Second)
	return marshal(e.event(), doc(e))
}

func (Enforced) event() string { return "enforced" }

func (e Enforced) subject() string { return "MFA is now on for " + e.TenantName }

func (e Enforced) text() string {
	return fmt.Sprintf("Two-factor authentication (MFA) is now on for %s (%s), as announced on %s.\n\n"+
		"%d users had not set up TOTP yet: they must do so at their next login.\n",
		e.TenantName, e.TenantID, e.NotifiedAt.UTC().Format(time.RFC1123), e.UsersWithoutTOTP)
}

// SweepCompleted is a full sweep's digest: its summary as the sweep answered it.
type SweepCompleted struct {
	Summary json.RawMessage `json:"summary"`
	SweepID string          `json:"sweep_id"`
	// Text is the summary told in words, for the email.
	Text string `json:"-"`
}

// MarshalJSON writes the document with its event name first.
func (s SweepCompleted) MarshalJSON() ([]byte, error) {
	type doc SweepCompleted
	return marshal(s.event(), doc(s))
}

func (SweepCompleted) event() string { return "sweep_completed" }

func (s SweepCompleted) subject() string { return "MFA compliance sweep " + s.SweepID + " completed" }

func (s SweepCompleted) text() string { return s.Text }

// marshal writes {"event": event, ...fields of doc}.
func marshal(event string, doc any) ([]byte, error) {
	fields, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	head, _ := json.Marshal(event)
	out := append([]byte(`{"event":`), head...)
	if len(fields) > 2 {
		out = append(out, ',')
	}
	return append(out, fields[1:]...), nil
}
