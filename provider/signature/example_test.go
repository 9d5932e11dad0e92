package signature_test

import (
	"fmt"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
)

// A receiver checks the Pulumi-Webhook-Signature header against the raw body bytes.
func ExampleVerify() {
	body := []byte(`{"projectName":"website","stackName":"prod"}`)
	header := signature.Sign("my-secret", body) // what the sender put in the header

	fmt.Println(signature.Verify("my-secret", header, body))
	fmt.Println(signature.Verify("wrong-secret", header, body) != nil)
	// Output:
	// <nil>
	// true
}

// A receiver checks the Standard Webhooks headers, which also bound the request's age.
func ExampleVerifyStandard() {
	body := []byte(`{"projectName":"website","stackName":"prod"}`)
	sent := time.Unix(1700000000, 0)
	header := signature.SignStandard("my-secret", "delivery-1", sent, body)

	err := signature.VerifyStandard("my-secret", "delivery-1", "1700000000", header, body, sent.Add(time.Minute), 5*time.Minute)
	fmt.Println(err)
	err = signature.VerifyStandard("my-secret", "delivery-1", "1700000000", header, body, sent.Add(time.Hour), 5*time.Minute)
	fmt.Println(err != nil)
	// Output:
	// <nil>
	// true
}
