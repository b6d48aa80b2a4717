#!/usr/bin/env node
// Self-test for verify.mjs: keys and signatures are made with the libraries
// themselves (ethers Wallet, tweetnacl, cosmjs Secp256k1Wallet), plus a few
// published known-answer vectors. Every kind gets at least one valid and one
// tampered case; verify.mjs is run as a child process, exactly as the Rust
// integration tests run it. Exits 0 iff every expectation holds.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import {
  getBytes,
  hexlify,
  id,
  keccak256,
  Signature,
  toUtf8Bytes,
  TypedDataEncoder,
  Wallet,
} from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";
import { makeSignDoc, Secp256k1Wallet } from "@cosmjs/amino";
import { Random } from "@cosmjs/crypto";
import { fromBase64, toBase64, toHex } from "@cosmjs/encoding";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VERIFY = path.join(HERE, "verify.mjs");
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function runVerify(input) {
  const r = spawnSync(process.execPath, [VERIFY], { input, encoding: "utf8" });
  if (r.error) throw r.error;
  return r;
}

// Flip one bit of a hex string's byte at `pos` (negative = from the end).
function flipHexByte(hex, pos) {
  const b = getBytes(hex).slice();
  const i = pos < 0 ? b.length + pos : pos;
  b[i] ^= 0x01;
  return hexlify(b);
}

// Turn a low-s 65-byte EVM signature into its malleable high-s twin.
function evmHighS(sigHex) {
  const sig = Signature.from(sigHex);
  const s = N - BigInt(sig.s);
  const v = sig.v === 27 ? 28 : 27;
  return sig.r + s.toString(16).padStart(64, "0") + v.toString(16);
}

const cases = []; // { name, expect: bool, case, check?: (result) => string|null }
const add = (name, expect, c, check) => cases.push({ name, expect, case: c, check });

// ---------------------------------------------------------------- EVM keys
const alice = Wallet.createRandom();
const bob = Wallet.createRandom();

// 1. evm-personal
{
  const message = "keystead self-test ✓ personal_sign\nline 2";
  const signature = await alice.signMessage(message);
  add("evm-personal valid", true, { kind: "evm-personal", message, signature, address: alice.address });
  add("evm-personal valid (lower-case address)", true, {
    kind: "evm-personal", message, signature, address: alice.address.toLowerCase(),
  });
  add("evm-personal tampered message", false, {
    kind: "evm-personal", message: message + "!", signature, address: alice.address,
  });
  add("evm-personal tampered signature", false, {
    kind: "evm-personal", message, signature: flipHexByte(signature, 5), address: alice.address,
  });
  add("evm-personal wrong address", false, { kind: "evm-personal", message, signature, address: bob.address });
  add("evm-personal high-s twin", false, {
    kind: "evm-personal", message, signature: evmHighS(signature), address: alice.address,
  });
  const bytes = new Uint8Array([0, 1, 2, 0xff, 0xfe]);
  add("evm-personal valid (message_hex)", true, {
    kind: "evm-personal", message_hex: hexlify(bytes), signature: await alice.signMessage(bytes), address: alice.address,
  });
}

// 2. evm-typed — EIP-712 spec "Mail" example (types include EIP712Domain, as in the spec JSON)
const MAIL_DIGEST = "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2";
const mail = {
  types: {
    EIP712Domain: [
      { name: "name", type: "string" },
      { name: "version", type: "string" },
      { name: "chainId", type: "uint256" },
      { name: "verifyingContract", type: "address" },
    ],
    Person: [
      { name: "name", type: "string" },
      { name: "wallet", type: "address" },
    ],
    Mail: [
      { name: "from", type: "Person" },
      { name: "to", type: "Person" },
      { name: "contents", type: "string" },
    ],
  },
  primaryType: "Mail",
  domain: {
    name: "Ether Mail",
    version: "1",
    chainId: 1,
    verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
  },
  message: {
    from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
    to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
    contents: "Hello, Bob!",
  },
};
{
  const { EIP712Domain: _d, ...structTypes } = mail.types;
  const localDigest = TypedDataEncoder.hash(mail.domain, structTypes, mail.message);
  if (localDigest !== MAIL_DIGEST) {
    console.error(`FATAL: ethers computes Mail digest ${localDigest}, spec says ${MAIL_DIGEST}`);
    process.exit(1);
  }
  const digestIs = (r) => (r.digest === MAIL_DIGEST ? null : `digest ${r.digest} != ${MAIL_DIGEST}`);

  // Spec's own signature: key keccak256("cow"), v=28, r=0x4355…, s=0x0729…
  const cow = new Wallet(keccak256(toUtf8Bytes("cow")));
  const specSig =
    "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d" +
    "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562" + "1c";
  add("evm-typed EIP-712 spec Mail signature (cow)", true, {
    kind: "evm-typed", typedData: mail, signature: specSig, address: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
  }, digestIs);
  add("evm-typed cow key is the spec signer", true, { kind: "evm-address", address: cow.address }, (r) =>
    r.checksummed === "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" ? null : `cow address ${r.checksummed}`);

  const signature = await alice.signTypedData(mail.domain, structTypes, mail.message);
  add("evm-typed valid (alice signs Mail)", true, {
    kind: "evm-typed", typedData: mail, signature, address: alice.address,
  }, digestIs);
  const tampered = structuredClone(mail);
  tampered.message.contents = "Hello, Bob?";
  add("evm-typed tampered message", false, {
    kind: "evm-typed", typedData: tampered, signature, address: alice.address,
  }, (r) => (r.digest && r.digest !== MAIL_DIGEST ? null : "tampered digest should differ"));
  const otherChain = structuredClone(mail);
  otherChain.domain.chainId = 5;
  add("evm-typed tampered domain (chainId)", false, {
    kind: "evm-typed", typedData: otherChain, signature, address: alice.address,
  });
  add("evm-typed tampered signature", false, {
    kind: "evm-typed", typedData: mail, signature: flipHexByte(signature, 40), address: alice.address,
  });
  add("evm-typed wrong primaryType", false, {
    kind: "evm-typed", typedData: { ...mail, primaryType: "Person" }, signature, address: alice.address,
  });
}

// 3. evm-tx
{
  const tx1559 = {
    type: 2,
    chainId: 11155111,
    nonce: 7,
    to: bob.address,
    value: 1234567890123456789n,
    gasLimit: 21000n,
    maxFeePerGas: 30_000_000_000n,
    maxPriorityFeePerGas: 1_500_000_000n,
    data: "0x",
    accessList: [],
  };
  const raw = await alice.signTransaction(tx1559);
  add("evm-tx type-2 valid", true, { kind: "evm-tx", raw, address: alice.address }, (r) => {
    const want = {
      type: 2, chainId: "11155111", nonce: 7, to: bob.address, value: "1234567890123456789",
      gasLimit: "21000", maxFeePerGas: "30000000000", maxPriorityFeePerGas: "1500000000",
      gasPrice: null, data: "0x",
    };
    for (const [k, v] of Object.entries(want)) if (r[k] !== v) return `${k}: got ${JSON.stringify(r[k])}, want ${JSON.stringify(v)}`;
    if (r.hash !== keccak256(raw)) return `hash ${r.hash} != keccak256(raw)`;
    if (!Array.isArray(r.accessList) || r.accessList.length !== 0) return "accessList should be []";
    return null;
  });
  add("evm-tx type-2 wrong sender", false, { kind: "evm-tx", raw, address: bob.address });
  add("evm-tx type-2 tampered signature byte", false, { kind: "evm-tx", raw: flipHexByte(raw, -3), address: alice.address });
  // Change the nonce byte inside the RLP (nonce 7 -> 6): signature no longer matches sender.
  const i = raw.indexOf("83aa36a707"); // chainId 11155111 (0x83 aa36a7) then nonce 0x07
  if (i < 0) throw new Error("selftest: could not locate nonce in raw tx");
  const rawNonce = raw.slice(0, i + 8) + "06" + raw.slice(i + 10);
  add("evm-tx type-2 tampered nonce", false, { kind: "evm-tx", raw: rawNonce, address: alice.address });

  const rawLegacy = await alice.signTransaction({
    type: 0, chainId: 1, nonce: 0, to: bob.address, value: 1n, gasLimit: 50000n,
    gasPrice: 20_000_000_000n, data: "0xdeadbeef",
  });
  add("evm-tx legacy EIP-155 valid", true, { kind: "evm-tx", raw: rawLegacy, address: alice.address }, (r) =>
    r.type === 0 && r.chainId === "1" && r.gasPrice === "20000000000" && r.maxFeePerGas === null && r.data === "0xdeadbeef"
      ? null : `unexpected fields ${JSON.stringify(r)}`);
  add("evm-tx legacy tampered", false, { kind: "evm-tx", raw: flipHexByte(rawLegacy, -40), address: alice.address });

  const rawAl = await alice.signTransaction({
    type: 1, chainId: 1, nonce: 3, to: bob.address, value: 0n, gasLimit: 60000n, gasPrice: 1n, data: "0x",
    accessList: [{ address: bob.address, storageKeys: [id("slot")] }],
  });
  add("evm-tx type-1 access list valid", true, { kind: "evm-tx", raw: rawAl, address: alice.address }, (r) =>
    r.type === 1 && r.accessList.length === 1 && r.accessList[0].storageKeys[0] === id("slot")
      ? null : `unexpected accessList ${JSON.stringify(r.accessList)}`);
  add("evm-tx unsigned", false, {
    kind: "evm-tx", raw: (await import("ethers")).Transaction.from({ ...tx1559 }).unsignedSerialized, address: alice.address,
  });
}

// 4. evm-digest
{
  const digest = keccak256(toUtf8Bytes("arbitrary 32-byte digest"));
  const signature = alice.signingKey.sign(digest).serialized;
  add("evm-digest valid", true, { kind: "evm-digest", digest, signature, address: alice.address });
  add("evm-digest tampered digest", false, { kind: "evm-digest", digest: flipHexByte(digest, 0), signature, address: alice.address });
  add("evm-digest tampered signature", false, { kind: "evm-digest", digest, signature: flipHexByte(signature, 10), address: alice.address });
  add("evm-digest high-s twin", false, { kind: "evm-digest", digest, signature: evmHighS(signature), address: alice.address });
}

// 7. evm-address
{
  add("evm-address valid checksum", true, { kind: "evm-address", address: alice.address });
  add("evm-address EIP-55 spec vector", true, { kind: "evm-address", address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" });
  add("evm-address all lower-case", false, { kind: "evm-address", address: alice.address.toLowerCase() });
  // Flip the case of the first letter in the hex part.
  const a = alice.address;
  const j = [...a].findIndex((ch, k) => k > 1 && /[a-fA-F]/.test(ch));
  const flipped = j < 0 ? a.toLowerCase().replace(/^0x0/, "0x1") // all digits: change a digit instead
    : a.slice(0, j) + (a[j] === a[j].toLowerCase() ? a[j].toUpperCase() : a[j].toLowerCase()) + a.slice(j + 1);
  add("evm-address wrong checksum case", false, { kind: "evm-address", address: flipped });
  add("evm-address malformed", false, { kind: "evm-address", address: "0x1234" });
}

// 5. solana
{
  const kp = nacl.sign.keyPair();
  const message = toUtf8Bytes("keystead solana self-test");
  const sig = nacl.sign.detached(message, kp.secretKey);
  const base = {
    kind: "solana",
    message_b64: toBase64(message),
    signature: bs58.encode(sig),
    address: bs58.encode(kp.publicKey),
  };
  add("solana valid", true, base);
  const m2 = message.slice(); m2[0] ^= 1;
  add("solana tampered message", false, { ...base, message_b64: toBase64(m2) });
  const s2 = sig.slice(); s2[63] ^= 0x10;
  add("solana tampered signature", false, { ...base, signature: bs58.encode(s2) });
  add("solana wrong pubkey", false, { ...base, address: bs58.encode(nacl.sign.keyPair().publicKey) });
  // RFC 8032 §7.1 TEST 1 (empty message).
  const rfcPk = Uint8Array.from(Buffer.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "hex"));
  const rfcSig = Uint8Array.from(Buffer.from(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b", "hex"));
  add("solana RFC 8032 test 1", true, { kind: "solana", message_b64: "", signature: bs58.encode(rfcSig), address: bs58.encode(rfcPk) });
}

// 6. cosmos-adr036
{
  const wallet = await Secp256k1Wallet.fromKey(Random.getBytes(32), "cosmos");
  const [acct] = await wallet.getAccounts();
  const other = await Secp256k1Wallet.fromKey(Random.getBytes(32), "cosmos");
  const [otherAcct] = await other.getAccounts();

  const adr036 = async (w, signer, data) => {
    const dataB64 = toBase64(data);
    const doc = makeSignDoc(
      [{ type: "sign/MsgSignData", value: { signer, data: dataB64 } }],
      { gas: "0", amount: [] }, "", "", 0, 0,
    );
    const { signature } = await w.signAmino(signer, doc);
    return {
      kind: "cosmos-adr036",
      data_b64: dataB64,
      signer,
      pubkey_hex: toHex(fromBase64(signature.pub_key.value)),
      signature_b64: signature.signature,
    };
  };
  const valid = await adr036(wallet, acct.address, toUtf8Bytes("keystead cosmos self-test <&>"));
  add("cosmos-adr036 valid", true, valid, (r) =>
    r.expected_signer === acct.address ? null : `expected_signer ${r.expected_signer} != ${acct.address}`);
  add("cosmos-adr036 tampered data", false, { ...valid, data_b64: toBase64(toUtf8Bytes("keystead cosmos self-test <&>!")) });
  const sig = fromBase64(valid.signature_b64); const sigT = sig.slice(); sigT[20] ^= 1;
  add("cosmos-adr036 tampered signature", false, { ...valid, signature_b64: toBase64(sigT) });
  // Valid signature by `other`, but claimed for wallet's signer address: address check must fail.
  const forged = await adr036(other, otherAcct.address, toUtf8Bytes("x"));
  add("cosmos-adr036 pubkey does not match signer", false, { ...forged, signer: acct.address });
  add("cosmos-adr036 wrong pubkey", false, { ...valid, pubkey_hex: toHex(otherAcct.pubkey) });
  // High-s twin (mathematically valid ECDSA, rejected by the Cosmos SDK).
  const s = BigInt("0x" + toHex(sig.slice(32)));
  const hi = Uint8Array.from([...sig.slice(0, 32), ...Buffer.from((N - s).toString(16).padStart(64, "0"), "hex")]);
  add("cosmos-adr036 high-s twin", false, { ...valid, signature_b64: toBase64(hi) }, (r) =>
    r.signature_valid === true && r.low_s === false ? null : "expected signature_valid && !low_s");
  // Externally produced vector (a Keplr wallet signature from a public
  // @keplr-wallet/cosmos verifyADR36Amino example): data = the signer string.
  const kSigner = "cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud";
  const keplr = {
    kind: "cosmos-adr036",
    data_b64: toBase64(toUtf8Bytes(kSigner)),
    signer: kSigner,
    pubkey_hex: toHex(fromBase64("A/MdHVpitzHNSdD1Zw3kY+L5PEIPyd9l6sD5i4aIfXp9")),
    signature_b64: "vb78/y129cOiWyQkeFF8wCKZsOyzjpILnpEVZ72o5YUhEOmQZzVPcbUqWPLR7aZQ20j6vnYhIuCQN0HEG3igFg==",
  };
  add("cosmos-adr036 Keplr known-answer vector", true, keplr);
  add("cosmos-adr036 Keplr vector, other data", false, { ...keplr, data_b64: toBase64(toUtf8Bytes("x")) });
  // Other bech32 prefix works when the key matches.
  const osmo = await Secp256k1Wallet.fromKey(Random.getBytes(32), "osmo");
  const [osmoAcct] = await osmo.getAccounts();
  add("cosmos-adr036 valid (osmo prefix)", true, await adr036(osmo, osmoAcct.address, new Uint8Array([0, 255, 1])));
}

// misc
add("unknown kind", false, { kind: "bitcoin-bip322", message: "x" });
add("malformed evm signature", false, { kind: "evm-personal", message: "x", signature: "0x1234", address: alice.address });

// ------------------------------------------------------------------- run
const r = runVerify(JSON.stringify(cases.map((c) => c.case)));
if (r.status !== 0) {
  console.error(`verify.mjs exited ${r.status}\n${r.stderr}`);
  process.exit(1);
}
const results = JSON.parse(r.stdout);
let failures = 0;
if (!Array.isArray(results) || results.length !== cases.length) {
  console.error(`expected ${cases.length} results, got ${JSON.stringify(results).slice(0, 200)}`);
  process.exit(1);
}
cases.forEach((c, i) => {
  const res = results[i];
  let problem = null;
  if (typeof res.ok !== "boolean" || typeof res.detail !== "string") problem = "result lacks ok/detail";
  else if (res.ok !== c.expect) problem = `expected ok=${c.expect}`;
  else if (c.check) problem = c.check(res);
  if (problem) failures++;
  const tag = problem ? "FAIL" : "pass";
  const want = c.expect ? "valid   " : "rejected";
  console.log(`${tag}  ${want}  ${c.name}${problem ? `  <-- ${problem}` : ""}  [${res.detail.slice(0, 90)}]`);
});

// Process-level contract: bad JSON -> exit 2; empty array -> [] and exit 0.
const bad = runVerify("{not json");
const badOk = bad.status === 2;
if (!badOk) failures++;
console.log(`${badOk ? "pass" : "FAIL"}  invalid JSON on stdin -> exit ${bad.status} (want 2)`);
const empty = runVerify("[]");
const emptyOk = empty.status === 0 && empty.stdout.trim() === "[]";
if (!emptyOk) failures++;
console.log(`${emptyOk ? "pass" : "FAIL"}  empty array -> ${JSON.stringify(empty.stdout.trim())} exit ${empty.status}`);

const total = cases.length + 2;
console.log(`\n${total - failures}/${total} passed`);
process.exit(failures ? 1 : 0);
