// Package bgpconfig holds the strait.io/v1alpha1 custom resources that
// configure LoadBalancer address pools and BGP (LoadBalancerIPPool, BGPPeer,
// BGPAdvertisement; their CRDs are in deploy/crds), reads them from YAML
// ([DecodeYAML], standalone mode) or from unstructured objects
// ([FromUnstructured], the dynamic client), and converts them ([Convert],
// pure) into what package bgp and the address allocator
// (controlplane/lbipam) consume.
//
// The three kinds are cluster-scoped, where MetalLB's are namespaced in
// metallb-system: they are cluster-wide configuration, like a
// StorageClass. A BGPPeer's MD5 password is read from the Secret named by
// passwordSecretRef (namespace strait-system unless given).
//
// Convert checks every object as the CRDs' OpenAPI and CEL rules do (files
// in standalone mode bypass the apiserver) and more (overlapping pools,
// duplicate peer addresses, missing Secrets, unknown pool names). A bad
// object is reported in [Config.Errors] with its kind and name and left
// out; it never blocks the others. When two objects conflict (pools that
// overlap, peers with the same address) the older one (creationTimestamp,
// then name) wins, so creating a new object never disturbs a working one.
//
// Node selectors are not evaluated here: they are carried into
// bgp.Peer.NodeSelector and bgp.AdvertisementConfig.NodeSelector, which
// bgp.Controller applies (and drains on when the node stops matching).
package bgpconfig
