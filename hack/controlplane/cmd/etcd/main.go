// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 so
// that it matches the etcd client version kube-apiserver was built with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
