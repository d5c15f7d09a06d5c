// Package secrets reads the Acronis credentials and the webhook signing keys from
// AWS Secrets Manager and caches them across warm invocations.
//
// The cache is a small TTL cache over GetSecretValue rather than
// github.com/aws/aws-secretsmanager-caching-go/v2, for concrete reasons found in
// its v2.2.0 source:
//   - its forced refresh (RefreshNow) sleeps 2.5 to 5 seconds with time.Sleep,
//     ignoring the context, and returns no error: the re-read after Acronis
//     rejects rotated credentials would eat a webhook's budget under API
//     Gateway's 30 second limit, and the caller could not tell whether it
//     happened. After a failed DescribeSecret it sleeps until the next scheduled
//     refresh, counted in nanoseconds but slept in milliseconds: days;
//   - it reads time.Now directly, so TTL behaviour cannot be tested with a fake clock;
//   - every refresh costs DescribeSecret plus GetSecretValue, two calls and two
//     IAM actions where one does.
//
// The only Secrets Manager action this package calls is GetSecretValue.
package secrets
