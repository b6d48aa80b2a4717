#!/usr/bin/env node
// Independent signature verifier for keystead integration tests.
//
// Reads ONE JSON document from stdin (an array of cases) and writes ONE JSON
// array to stdout with one result per case, in the same order:
//   { "ok": true|false, "detail": "...", "index": <n>, "kind": "...", ...extra }
// Exit status: 0 whenever the input parsed (individual failures are reported
// per case); 2 if stdin is not valid JSON or not a JSON array.
//
// Everything here is done with third-party libraries (ethers, tweetnacl, bs58,
// @cosmjs/*) and never with keystead code. See README.md for the case formats.

import {
  getAddress,
  getBytes,
  hexlify,
  recoverAddress,
  Signature,
  Transaction,
  TypedDataEncoder,
  verifyMessage,
  verifyTypedData,
} from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";
import { makeSignDoc, serializeSignDoc } from "@cosmjs/amino";
import { ripemd160, Secp256k1, Secp256k1Signature, sha256 } from "@cosmjs/crypto";
import { fromBase64, fromBech32, toBech32, toHex, toUtf8 } from "@cosmjs/encoding";

// secp256k1 group order and half order (same curve for EVM and Cosmos).
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const SECP256K1_HALF_N = SECP256K1_N >> 1n;

const eqAddr = (a, b) =>
  typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();

const bigToDec = (v) => (v === null || v === undefined ? null : v.toString());

function requireString(c, field) {
  const v = c[field];
  if (typeof v !== "string") throw new Error(`field "${field}" must be a string`);
  return v;
}

// Strict standard base64 (RFC 4648, with padding; whitespace not allowed).
function strictBase64(s, field) {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) {
    throw new Error(`field "${field}" is not canonical padded standard base64`);
  }
  return fromBase64(s);
}

// Parse a 65-byte r||s||v EVM signature; report v and whether s is low (EIP-2).
function evmSigInfo(sigHex) {
  const bytes = getBytes(sigHex);
  if (bytes.length !== 65) {
    throw new Error(`signature must be 65 bytes (r||s||v), got ${bytes.length}`);
  }
  const s = BigInt(hexlify(bytes.slice(32, 64)));
  return { v: bytes[64], low_s: s <= SECP256K1_HALF_N };
}

// ---------------------------------------------------------------- EVM kinds

function evmPersonal(c) {
  const address = requireString(c, "address");
  const signature = requireString(c, "signature");
  // "message" is a UTF-8 string; "message_hex" (0x…) may be used for raw bytes.
  let message;
  if (typeof c.message_hex === "string") message = getBytes(c.message_hex);
  else message = requireString(c, "message");
  const info = evmSigInfo(signature);
  const recovered = verifyMessage(message, signature);
  const match = eqAddr(recovered, address);
  let detail = recovered;
  if (!match) detail = `recovered ${recovered}, expected ${address}`;
  else if (!info.low_s) detail = `${recovered} (but signature has high s, non-canonical per EIP-2)`;
  return { ok: match && info.low_s, detail, recovered, ...info };
}

function evmTyped(c) {
  const address = requireString(c, "address");
  const signature = requireString(c, "signature");
  const td = c.typedData;
  if (!td || typeof td !== "object") throw new Error(`field "typedData" must be an object`);
  const { types, primaryType, domain, message } = td;
  if (!types || typeof types !== "object") throw new Error("typedData.types must be an object");
  if (!domain || typeof domain !== "object") throw new Error("typedData.domain must be an object");
  if (!message || typeof message !== "object") throw new Error("typedData.message must be an object");

  const { EIP712Domain: givenDomainType, ...structTypes } = types;
  const encoder = TypedDataEncoder.from(structTypes);
  const notes = [];
  if (primaryType !== undefined && primaryType !== encoder.primaryType) {
    throw new Error(
      `typedData.primaryType "${primaryType}" but the types' only root is "${encoder.primaryType}"`,
    );
  }
  // ethers derives the EIP712Domain type from the domain's fields (canonical
  // order name, version, chainId, verifyingContract, salt). If the document
  // declares a different EIP712Domain, the signer may have hashed something else.
  if (givenDomainType !== undefined) {
    const derived = TypedDataEncoder.getPayload(domain, structTypes, message).types.EIP712Domain;
    const norm = (t) => JSON.stringify((t || []).map((f) => [f.name, f.type]));
    if (norm(givenDomainType) !== norm(derived)) {
      notes.push(
        `declared EIP712Domain ${norm(givenDomainType)} differs from the one derived from domain ${norm(derived)}`,
      );
    }
  }

  const digest = TypedDataEncoder.hash(domain, structTypes, message);
  const info = evmSigInfo(signature);
  const recovered = verifyTypedData(domain, structTypes, message, signature);
  const match = eqAddr(recovered, address);
  let detail = recovered;
  if (!match) detail = `recovered ${recovered}, expected ${address}`;
  else if (!info.low_s) detail = `${recovered} (but signature has high s, non-canonical per EIP-2)`;
  if (notes.length) detail += `; ${notes.join("; ")}`;
  return {
    ok: match && info.low_s,
    detail,
    recovered,
    digest,
    primaryType: encoder.primaryType,
    ...info,
  };
}

function evmTx(c) {
  const address = requireString(c, "address");
  const raw = requireString(c, "raw");
  const tx = Transaction.from(raw);
  const fields = {
    type: tx.type,
    chainId: bigToDec(tx.chainId),
    nonce: tx.nonce,
    to: tx.to,
    value: bigToDec(tx.value),
    gasLimit: bigToDec(tx.gasLimit),
    maxFeePerGas: bigToDec(tx.maxFeePerGas),
    maxPriorityFeePerGas: bigToDec(tx.maxPriorityFeePerGas),
    gasPrice: bigToDec(tx.gasPrice),
    data: tx.data,
    accessList: tx.accessList
      ? tx.accessList.map((e) => ({ address: e.address, storageKeys: e.storageKeys }))
      : null,
  };
  if (!tx.signature) {
    return { ok: false, detail: "transaction is unsigned", from: null, hash: null, ...fields };
  }
  const from = tx.from;
  const hash = tx.hash;
  const lowS = BigInt(tx.signature.s) <= SECP256K1_HALF_N;
  // Re-encoding must reproduce the input byte-for-byte (canonical RLP).
  const canonical = tx.serialized.toLowerCase() === raw.toLowerCase();
  const match = eqAddr(from, address);
  let detail;
  if (!match) detail = `recovered from=${from}, expected ${address}`;
  else if (!lowS) detail = `from=${from} but signature has high s (rejected by Ethereum, EIP-2)`;
  else if (!canonical) detail = `from=${from} but re-serialization differs from raw (non-canonical encoding)`;
  else detail = from;
  return {
    ok: match && lowS && canonical,
    detail,
    from,
    hash,
    low_s: lowS,
    yParity: tx.signature.yParity,
    canonical,
    ...fields,
  };
}

function evmDigest(c) {
  const address = requireString(c, "address");
  const signature = requireString(c, "signature");
  const digest = requireString(c, "digest");
  if (getBytes(digest).length !== 32) throw new Error("digest must be 32 bytes");
  const info = evmSigInfo(signature);
  const recovered = recoverAddress(digest, Signature.from(signature));
  const match = eqAddr(recovered, address);
  let detail = recovered;
  if (!match) detail = `recovered ${recovered}, expected ${address}`;
  else if (!info.low_s) detail = `${recovered} (but signature has high s, non-canonical per EIP-2)`;
  return { ok: match && info.low_s, detail, recovered, ...info };
}

function evmAddress(c) {
  const address = requireString(c, "address");
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new Error(`not a 0x-prefixed 20-byte hex address: ${address}`);
  // Lower-case first so a wrong mixed-case checksum yields the expected value
  // instead of ethers' "bad address checksum" exception.
  const checksummed = getAddress(address.toLowerCase());
  const ok = checksummed === address;
  return {
    ok,
    detail: ok ? checksummed : `expected EIP-55 checksum ${checksummed}`,
    checksummed,
  };
}

// ------------------------------------------------------------------- Solana

function solana(c) {
  const message = strictBase64(requireString(c, "message_b64"), "message_b64");
  const signature = bs58.decode(requireString(c, "signature"));
  const pubkey = bs58.decode(requireString(c, "address"));
  if (signature.length !== 64) throw new Error(`signature must be 64 bytes, got ${signature.length}`);
  if (pubkey.length !== 32) throw new Error(`address must be a 32-byte public key, got ${pubkey.length}`);
  const ok = nacl.sign.detached.verify(message, signature, pubkey);
  return { ok, detail: ok ? "ed25519 signature valid" : "ed25519 signature INVALID" };
}

// ------------------------------------------------------- Cosmos ADR-036

// Hand-built reference sign doc, sorted keys, compact, amino-JSON escaping.
function adr036Literal(dataB64, signer) {
  const esc = (s) =>
    JSON.stringify(s).replace(/&/g, "\\u0026").replace(/</g, "\\u003c").replace(/>/g, "\\u003e");
  return (
    `{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"",` +
    `"msgs":[{"type":"sign/MsgSignData","value":{"data":${esc(dataB64)},"signer":${esc(signer)}}}],` +
    `"sequence":"0"}`
  );
}

function cosmosAdr036(c) {
  const dataB64 = requireString(c, "data_b64");
  const signer = requireString(c, "signer");
  const pubkeyHex = requireString(c, "pubkey_hex");
  const signatureB64 = requireString(c, "signature_b64");
  strictBase64(dataB64, "data_b64"); // the doc embeds the string itself; it must be valid base64

  if (!/^(?:[0-9a-fA-F]{2})+$/.test(pubkeyHex)) throw new Error("pubkey_hex is not hex");
  const pubkey = Uint8Array.from(Buffer.from(pubkeyHex, "hex"));
  if (pubkey.length !== 33 || (pubkey[0] !== 0x02 && pubkey[0] !== 0x03)) {
    throw new Error(`pubkey_hex must be a 33-byte compressed secp256k1 key, got ${pubkey.length} bytes`);
  }
  const sig = strictBase64(signatureB64, "signature_b64");
  if (sig.length !== 64) throw new Error(`signature must be 64 bytes r||s, got ${sig.length}`);

  // 1. Address: bech32(prefix, ripemd160(sha256(pubkey))).
  // Explicit length limit: @cosmjs/encoding 0.39.0 defaults to Infinity, which
  // @scure/base >= 2.4 rejects ("limit: expected safe integer").
  const { prefix } = fromBech32(signer, 1023);
  const expectedSigner = toBech32(prefix, ripemd160(sha256(pubkey)));
  const signerOk = expectedSigner === signer;

  // 2. Sign doc via cosmjs' amino helpers, cross-checked with the literal.
  const signDoc = makeSignDoc(
    [{ type: "sign/MsgSignData", value: { signer, data: dataB64 } }],
    { gas: "0", amount: [] },
    "",
    "",
    0,
    0,
  );
  const signBytes = serializeSignDoc(signDoc);
  const literal = adr036Literal(dataB64, signer);
  const docsAgree = Buffer.from(signBytes).toString("utf8") === literal;
  if (!docsAgree) {
    throw new Error(
      `internal: cosmjs sign doc ${Buffer.from(signBytes).toString("utf8")} != literal ${literal}`,
    );
  }
  const hash = sha256(signBytes);

  // 3. Signature. Cosmos SDK rejects high-s signatures, so we do as well.
  const s = BigInt("0x" + toHex(sig.slice(32, 64)));
  const lowS = s <= SECP256K1_HALF_N;
  const sigOk = Secp256k1.verifySignature(Secp256k1Signature.fromFixedLength(sig), hash, pubkey);

  const problems = [];
  if (!signerOk) problems.push(`signer ${signer} != address of pubkey ${expectedSigner}`);
  if (!sigOk) problems.push("secp256k1 signature INVALID over sha256(sign doc)");
  if (sigOk && !lowS) problems.push("signature has high s (rejected by Cosmos SDK)");
  const ok = signerOk && sigOk && lowS;
  return {
    ok,
    detail: ok ? `ADR-036 signature valid for ${signer}` : problems.join("; "),
    expected_signer: expectedSigner,
    signature_valid: sigOk,
    low_s: lowS,
    sign_doc: literal,
    sign_doc_sha256: "0x" + toHex(hash),
  };
}

// ------------------------------------------------------------------ driver

const HANDLERS = {
  "evm-personal": evmPersonal,
  "evm-typed": evmTyped,
  "evm-tx": evmTx,
  "evm-digest": evmDigest,
  "evm-address": evmAddress,
  solana: solana,
  "cosmos-adr036": cosmosAdr036,
};

function runCase(c, index) {
  const base = { index };
  if (c && typeof c === "object" && !Array.isArray(c)) {
    if (c.id !== undefined) base.id = c.id;
    if (c.kind !== undefined) base.kind = c.kind;
  } else {
    return { ok: false, detail: "case is not a JSON object", ...base };
  }
  const handler = Object.hasOwn(HANDLERS, c.kind) ? HANDLERS[c.kind] : undefined;
  if (!handler) return { ok: false, detail: `unknown kind ${JSON.stringify(c.kind)}`, ...base };
  try {
    const { ok, detail, ...extra } = handler(c);
    return { ok: ok === true, detail: String(detail), ...base, ...extra };
  } catch (e) {
    return { ok: false, detail: `error: ${e && e.message ? e.message : String(e)}`, ...base };
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const input = await readStdin();
let cases;
try {
  cases = JSON.parse(input);
} catch (e) {
  process.stderr.write(`verify.mjs: stdin is not valid JSON: ${e.message}\n`);
  process.exit(2);
}
if (!Array.isArray(cases)) {
  process.stderr.write("verify.mjs: stdin must be a JSON array of cases\n");
  process.exit(2);
}
const results = cases.map(runCase);
process.stdout.write(
  JSON.stringify(results, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n",
);
