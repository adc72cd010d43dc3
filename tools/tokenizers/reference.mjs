// The reference ids for kvcomp's tokenizer.json tests, from Hugging Face's tokenizers.js
// (npm @huggingface/tokenizers). Writes DIR/cases.json for the tokenizer in DIR: for each text
// of the battery (cases.mjs), its ids without and with special tokens and the decoded ids.
//   node tools/tokenizers/reference.mjs DIR [DIR ...]     (NODE_PATH: where the package is)
import fs from "fs";
import path from "path";
import { createRequire } from "module";
import { battery } from "./cases.mjs";

const require = createRequire(path.join(process.env.NODE_PATH || process.cwd(), "x.js"));
const { Tokenizer } = require("@huggingface/tokenizers");

for (const dir of process.argv.slice(2)) {
  const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const cfgFile = path.join(dir, "tokenizer_config.json");
  const tc = fs.existsSync(cfgFile) ? JSON.parse(fs.readFileSync(cfgFile, "utf8")) : {};
  const tok = new Tokenizer(tj, tc);
  const specials = (tj.added_tokens || []).map((t) => t.content);
  const cases = battery(specials).map((text) => {
    const ids = tok.encode(text, { add_special_tokens: false }).ids;
    const ids_special = tok.encode(text).ids;
    const decoded = ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    return { text, ids, ids_special, decoded };
  });
  fs.writeFileSync(path.join(dir, "cases.json"), JSON.stringify(cases, null, 0) + "\n");
  console.log(`${dir}: ${cases.length} cases`);
}
