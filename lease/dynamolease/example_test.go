package dynamolease_test

import (
	"context"
	"errors"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
)

// A worker opens the lease table of its application, creating it on first
// start, and reads every lease.
func Example() {
	ctx := context.Background()

	// In a real program cfg comes from config.LoadDefaultConfig; against
	// DynamoDB Local, set the endpoint with BaseEndpoint.
	var cfg aws.Config
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:8000")
	})

	store, err := dynamolease.New(client, "my-application",
		dynamolease.WithTags(map[string]string{"team": "streams"}))
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureTable(ctx); err != nil {
		log.Fatal(err)
	}

	leases, err := store.List(ctx)
	var malformed *lease.MalformedError
	switch {
	case errors.As(err, &malformed):
		// The well-formed leases are usable; a human should look at the rest.
		for _, item := range malformed.Items {
			log.Printf("unreadable lease %q: attribute %s: %s", item.Key, item.Attribute, item.Reason)
		}
	case err != nil:
		log.Fatal(err)
	}
	for _, l := range leases {
		log.Printf("%s owned by %q at %s", l.Key, l.Owner, l.Checkpoint)
	}

	// Keys this worker owns, from the owner index, without a full scan.
	owned, err := store.ListOwned(ctx, "worker-a")
	if errors.Is(err, errors.ErrUnsupported) {
		log.Print("the table has no owner index; filter List instead")
	}
	log.Print(owned)
	log.Printf("consumed so far: %+v", store.Stats())
}
