package kubetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the generated key material of one control plane, as PEM.
type pki struct {
	servingCert, servingKey []byte // self-signed; also the CA clients trust
	saKey, saPub            []byte // service-account token signing key pair
}

// newPKI generates a self-signed serving certificate valid for the given
// IPs and DNS names, and a service-account signing key.
func newPKI(ips []net.IP, dnsNames []string) (*pki, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kube-apiserver", Organization: []string{"strait kubetest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           ips,
		DNSNames:              dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}

	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(sa)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return nil, err
	}
	return &pki{
		servingCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		servingKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		saKey:       pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
		saPub:       pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	}, nil
}

// write stores the key material in dir and returns the file paths.
func (p *pki) write(dir string) (certFile, keyFile, saKeyFile, saPubFile string, err error) {
	files := []struct {
		name string
		data []byte
		path *string
	}{
		{"serving.crt", p.servingCert, &certFile},
		{"serving.key", p.servingKey, &keyFile},
		{"sa.key", p.saKey, &saKeyFile},
		{"sa.pub", p.saPub, &saPubFile},
	}
	for _, f := range files {
		*f.path = filepath.Join(dir, f.name)
		if err = os.WriteFile(*f.path, f.data, 0o600); err != nil {
			return "", "", "", "", fmt.Errorf("kubetest: %w", err)
		}
	}
	return certFile, keyFile, saKeyFile, saPubFile, nil
}
