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
const { Template } = require("@huggingface/jinja");

// Chat prompts: the template of tokenizer_config.json rendered by Hugging Face's Jinja
// (npm @huggingface/jinja) for one user message, with and without a system message.
const chats = [
  { system: "", user: "Hello! Who are you?" },
  { system: "", user: "  Write a haiku about caches.\n" },
  { system: "You are a terse assistant.", user: "日本語で答えて: 2+2?" },
  { system: " Be brief. ", user: "Explain <|im_start|> and [INST] tokens." },
];

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
  if (typeof tc.chat_template !== "string") continue;
  const template = new Template(tc.chat_template);
  const token = (t) => (t && typeof t === "object" ? t.content : t) ?? "";
  const rendered = [];
  for (const c of chats) {
    const messages = [...(c.system ? [{ role: "system", content: c.system }] : []), { role: "user", content: c.user }];
    let text;
    try {
      text = template.render({ messages, add_generation_prompt: true, bos_token: token(tc.bos_token),
                               eos_token: token(tc.eos_token) });
    } catch (e) {
      continue;  // the template refuses this conversation (Mistral v0.1 has no system role)
    }
    rendered.push({ ...c, text, ids: tok.encode(text, { add_special_tokens: false }).ids });
  }
  fs.writeFileSync(path.join(dir, "chat.json"), JSON.stringify(rendered, null, 1) + "\n");
  console.log(`${dir}: ${rendered.length} chat prompts`);
}
