package store_test

import (
	"os"
	"testing"

	"github.com/lobbyd/lobbyd/store/storetest"
)

// TestMain stops the Redis Cluster that storetest.Each's cluster tier
// shares between the package's tests once they have all run.
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
