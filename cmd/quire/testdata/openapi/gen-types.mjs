// gen-types.mjs IN OUT: openapi-typescript's types for the document IN,
// written to OUT. Its documented transform types binary strings (the
// multipart file field) as Blob, which its CLI types as string.
import { readFileSync, writeFileSync } from 'node:fs';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';

const [input, output] = process.argv.slice(2);
const BLOB = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier('Blob'));
const ast = await openapiTS(JSON.parse(readFileSync(input, 'utf8')), {
  transform(schema) {
    if (schema.format === 'binary') return BLOB;
    return undefined;
  },
});
writeFileSync(output, astToString(ast));
