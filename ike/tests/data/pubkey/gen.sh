#!/bin/sh
# Regenerates the test PKI of ike/tests/pubkey.rs with the OpenSSL CLI
# (made with OpenSSL 3.0). Validity dates are fixed so the tests can pass
# their own `now`; keys are fresh on every run, so rerunning rewrites every
# file, certreq-sha1.txt included. Only the leaves' keys are kept.
set -eu
cd "$(dirname "$0")"
rm -rf tmp-ca && mkdir tmp-ca && : > tmp-ca/index.txt

cat > tmp-ca/openssl.cnf <<'CNF'
[ca]
default_ca = test
[test]
dir = tmp-ca
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
policy = any
unique_subject = no
copy_extensions = none
[any]
countryName = optional
organizationName = optional
commonName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[sub_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign
[leaf_ec]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectAltName = DNS:gw.example.test, DNS:VPN.Example.Test, email:admin@example.test, IP:192.0.2.1, IP:2001:db8::1
authorityKeyIdentifier = keyid
[leaf_ed]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectAltName = DNS:ed.example.test
[leaf_rsa]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectAltName = DNS:rsa.example.test, email:rsa@example.test
[leaf_plain]
subjectAltName = DNS:other.example.test
[leaf_critical]
basicConstraints = critical, CA:false
subjectAltName = DNS:critical.example.test
1.3.6.1.4.1.99999.1 = critical, ASN1:NULL
[leaf_encipher]
keyUsage = critical, keyEncipherment
subjectAltName = DNS:encipher.example.test
CNF

key() { # name algorithm-options...
    name=$1; shift
    openssl genpkey "$@" -out "$name.key"
}
serial=1000
sign() { # out-name subject key issuer-cert issuer-key extensions start end [extra options]
    out=$1 subj=$2 k=$3 icert=$4 ikey=$5 ext=$6 start=$7 end=$8; shift 8
    serial=$((serial + 1)); printf '%04X\n' "$serial" > tmp-ca/serial
    openssl req -new -config tmp-ca/openssl.cnf -key "$k.key" -subj "$subj" -out tmp-ca/req.csr
    if [ "$icert" = self ]; then
        openssl ca -batch -notext -config tmp-ca/openssl.cnf -selfsign -keyfile "$ikey.key" \
            -in tmp-ca/req.csr -out "$out.pem" -extensions "$ext" -startdate "$start" -enddate "$end" "$@"
    else
        openssl ca -batch -notext -config tmp-ca/openssl.cnf -cert "$icert.pem" -keyfile "$ikey.key" \
            -in tmp-ca/req.csr -out "$out.pem" -extensions "$ext" -startdate "$start" -enddate "$end" "$@"
    fi
}
EC256="-algorithm EC -pkeyopt ec_paramgen_curve:P-256"
EC384="-algorithm EC -pkeyopt ec_paramgen_curve:P-384"
RSA="-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
PSS="-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -sigopt rsa_mgf1_md"
# shellcheck disable=SC2086
{
key root-ec $EC256; key int-ec $EC384; key leaf-ec $EC256; key leaf-ed -algorithm ED25519
key root-rsa $RSA; key leaf-rsa $RSA; key leaf-p384 $EC384
key root-ed -algorithm ED25519; key root-other $EC256; key evil-int $EC384; key sub $EC256
}
ROOT_FROM=20250101000000Z ROOT_TO=20450101000000Z
INT_FROM=20250102000000Z INT_TO=20400101000000Z
LEAF_FROM=20250201000000Z LEAF_TO=20300201000000Z

sign root-ec "/CN=Tandem Test Root EC" root-ec self root-ec root $ROOT_FROM $ROOT_TO -md sha256
sign int-ec "/O=Tandem Test/CN=Tandem Test Intermediate EC" int-ec root-ec root-ec intermediate $INT_FROM $INT_TO -md sha256
sign leaf-ec "/C=ZZ/O=Tandem Test/CN=gw.example.test" leaf-ec int-ec int-ec leaf_ec $LEAF_FROM $LEAF_TO -md sha384
sign leaf-ed "/CN=ed.example.test" leaf-ed int-ec int-ec leaf_ed $LEAF_FROM $LEAF_TO -md sha256
sign leaf-critical "/CN=critical.example.test" leaf-ec int-ec int-ec leaf_critical $LEAF_FROM $LEAF_TO -md sha384
sign leaf-encipher "/CN=encipher.example.test" leaf-ec int-ec int-ec leaf_encipher $LEAF_FROM $LEAF_TO -md sha384

sign root-rsa "/CN=Tandem Test Root RSA" root-rsa self root-rsa root $ROOT_FROM $ROOT_TO -md sha256
for md in sha256 sha384 sha512; do
    sign "leaf-rsa-pkcs1-$md" "/CN=rsa.example.test" leaf-rsa root-rsa root-rsa leaf_rsa $LEAF_FROM $LEAF_TO -md $md
    sign "leaf-rsa-pss-$md" "/CN=rsa.example.test" leaf-rsa root-rsa root-rsa leaf_rsa $LEAF_FROM $LEAF_TO -md $md $PSS:$md
done
sign leaf-p384 "/CN=p384.example.test" leaf-p384 root-rsa root-rsa leaf_rsa $LEAF_FROM $LEAF_TO -md sha512

sign root-ed "/CN=Tandem Test Root Ed25519" root-ed self root-ed root $ROOT_FROM $ROOT_TO
sign leaf-by-ed "/CN=gw.example.test" leaf-ec root-ed root-ed leaf_ec $LEAF_FROM $LEAF_TO

# Untrusted: another root, and an intermediate that takes the real one's name.
sign root-other "/CN=Tandem Test Other Root" root-other self root-other root $ROOT_FROM $ROOT_TO -md sha256
sign leaf-other "/CN=other.example.test" leaf-ec root-other root-other leaf_plain $LEAF_FROM $LEAF_TO -md sha256
sign evil-int "/O=Tandem Test/CN=Tandem Test Intermediate EC" evil-int root-other root-other intermediate $INT_FROM $INT_TO -md sha256
sign leaf-forged "/C=ZZ/O=Tandem Test/CN=gw.example.test" leaf-ec evil-int evil-int leaf_ec $LEAF_FROM $LEAF_TO -md sha384

# A leaf (CA:false) used as an issuer, and a CA below a pathlen:0 intermediate.
sign leaf-as-ca "/CN=sub.example.test" sub leaf-ec leaf-ec leaf_plain $LEAF_FROM $LEAF_TO -md sha256
sign sub-ca "/CN=Tandem Test Sub CA" sub int-ec int-ec sub_ca $LEAF_FROM $LEAF_TO -md sha384
sign leaf-below-pathlen "/CN=deep.example.test" leaf-ec sub-ca sub leaf_plain $LEAF_FROM $LEAF_TO -md sha256

# An intermediate that expires (2026-01-01) long before the leaf it issued.
sign int-short "/CN=Tandem Test Short-Lived CA" sub root-ec root-ec intermediate $INT_FROM 20260101000000Z -md sha256
sign leaf-outlives-ca "/CN=long.example.test" leaf-ec int-short sub leaf_plain $LEAF_FROM $LEAF_TO -md sha256

# Known answers made by OpenSSL over fixed signed octets.
printf 'Tandem RFC 7427 interop test: stand-in for RealMessage | Nonce | MACedID' > octets.bin
openssl dgst -sha256 -sign leaf-ec.key -out octets.leaf-ec.ecdsa-sha256.sig octets.bin
openssl dgst -sha384 -sign leaf-p384.key -out octets.leaf-p384.ecdsa-sha384.sig octets.bin
openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -sign leaf-rsa.key -out octets.leaf-rsa.pss-sha256.sig octets.bin
openssl dgst -sha512 -sign leaf-rsa.key -out octets.leaf-rsa.pkcs1-sha512.sig octets.bin
openssl dgst -sha1 -sign leaf-rsa.key -out octets.leaf-rsa.pkcs1-sha1.sig octets.bin
openssl pkeyutl -sign -rawin -inkey leaf-ed.key -in octets.bin -out octets.leaf-ed.ed25519.sig
openssl pkcs8 -topk8 -nocrypt -in leaf-ec.key -outform DER -out leaf-ec.key.der

# CERTREQ known answers: SHA-1 of each CA's SubjectPublicKeyInfo.
for ca in root-ec int-ec root-rsa root-ed; do
    printf '%s %s\n' "$ca" "$(openssl x509 -in $ca.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl sha1 -r | cut -d' ' -f1)"
done > certreq-sha1.txt

rm -rf tmp-ca root-ec.key int-ec.key root-rsa.key root-ed.key root-other.key evil-int.key sub.key
