// Texts chosen to break tokenizers: scripts of many languages, CJK, emoji and ZWJ sequences,
// combining marks (composed and decomposed), digit runs, contractions, whitespace runs, tabs and
// newlines, special tokens inside text, code. A fixed list, then seeded random mixtures of it.
const scripts = [
  "Hello world", "naïve café résumé", "Ελληνικά γράμματα", "Русский текст, ёжик", "Українська ґанок",
  "العربية لغة جميلة", "עברית שפה", "हिन्दी भाषा", "বাংলা ভাষা", "தமிழ் மொழி", "ภาษาไทยง่ายๆ",
  "한국어 문장입니다", "日本語のテキスト", "カタカナとひらがな", "中文文本处理", "繁體中文測試",
  "ქართული ენა", "Հայերեն լեզու", "አማርኛ ቋንቋ", "Tiếng Việt có dấu", "Türkçe İıĞğŞş", "Ærøskøbing Ångström",
  "Straße ß ẞ", "ǅungla ǈ ǋ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "ﬁnd ﬂow ﬀ", "Ⅻ Ⅳ ⅷ",
];
const emoji = [
  "🚀", "👨‍👩‍👧‍👦", "👍🏽", "🏳️‍🌈", "🇫🇷🇯🇵", "1️⃣", "❤️", "🧑‍💻", "😀😃😄", "🫠", "☕︎",
];
const marks = [
  "e\u0301", "a\u0308o\u0308u\u0308", "\u1100\u1161\u11a8", "n\u0303", "A\u030a", "\u0915\u094d\u0937",
  "Z\u0351\u0352\u0353a\u0354l\u0355g\u0356o", "\u0301leading mark", "i\u0307", "ﷺ",
];
const digits = [
  "0", "7", "42", "123", "1234", "12345", "1234567890123", "3.14159", "1,000,000", "2024-12-31",
  "٠١٢٣٤٥", "१२३", "１２３", "²³¹", "½ ¾", "⑦⑧", "0x1F", "1e-9", "v1.2.3", "+49 30 1234567",
];
const contractions = [
  "don't", "I'm", "you're", "we've", "she'll", "he'd", "it's", "DON'T", "I'M", "YOU'RE", "WE'VE",
  "She'Ll", "it'S", "’s curly", "rock 'n' roll", "'s", "''", "o'clock", "y'all'd've",
];
const spaces = [
  " ", "  ", "   ", "\t", "\t\t", " \t ", "\n", "\n\n", "\r\n", "\r", " \n ", "\n   \n", "\u00a0",
  "\u3000", "\u2009", "\u200b", "\u2028", "\u0085", "\ufeff", "\u000b", "\u000c", "      x",
];
const code = [
  "def f(x):\n    return x**2", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}", "<div class=\"a\">&amp;</div>",
  "https://example.com/path?q=1&r=2#frag", "user@example.org", "SELECT * FROM t WHERE id=1;",
  "$x = \\frac{a}{b}$", "#!/bin/bash\necho \"$HOME\"", "{\"key\": [1, 2, null]}", "a->b => c != d",
  "...", "!!!???", "---", "___init___", "~`@#$%^&*()", "C:\\Windows\\path", "snake_case camelCase PascalCase",
];
const prose = [
  "Call me Ishmael. Some years ago -- never mind how long precisely -- having little or no money in my purse,",
  "It was the best of times, it was the worst of times.", "  Leading spaces and trailing  ",
  "The quick brown fox jumps over the lazy dog.", "A\nB\n\nC", "Mr. O'Neil's \"quote\" (aside) [note] {x}",
];

function mulberry32(seed) {
  return function () {
    let t = (seed += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function battery(specials) {
  const sp = specials.slice(0, 6);
  const fixed = [
    ...scripts, ...emoji, ...marks, ...digits, ...contractions, ...spaces, ...code, ...prose,
    "", "a", " a", "a ", " ", "\n", "x".repeat(300), "ab".repeat(200), " ".repeat(50), "\n".repeat(20),
    "日本".repeat(100), "🚀".repeat(30),
    ...sp.map((s) => s), ...sp.map((s) => `text ${s} more`), ...sp.map((s) => `${s}start`),
    ...sp.map((s) => `end${s}`), ...sp.map((s) => ` ${s} `), ...sp.map((s) => `${s}${s}`),
    ...sp.map((s) => `${s}\n\nHello`), sp.length ? sp[0].slice(0, -1) : "<", // a broken special token
  ];
  // U+FEFF and U+0085 stay out of the mixtures: next to an lstrip token tokenizers.js strips
  // whitespace with JavaScript's trim, which counts U+FEFF and not U+0085; Rust's
  // char::is_whitespace (HF tokenizers, and kvcomp) is the other way round.
  const pools = [scripts, emoji, marks, digits, contractions, spaces.filter((s) => s !== "\ufeff" && s !== "\u0085"),
                 code, prose, sp.length ? sp : [""]];
  const seps = ["", " ", "  ", "\t", "\n", "\n\n", "\r\n", "-", "'", ".", "\u00a0"];
  const rand = mulberry32(20261204);
  const pick = (a) => a[Math.floor(rand() * a.length)];
  const mixed = [];
  while (mixed.length < 2400) {
    const n = 1 + Math.floor(rand() * 6);
    let s = "";
    for (let i = 0; i < n; ++i) {
      const pool = pools[Math.floor(rand() * pools.length)];
      let frag = pick(pool);
      if (rand() < 0.2) frag = frag.toUpperCase();
      if (rand() < 0.15 && frag.length > 2) frag = [...frag].slice(0, 1 + Math.floor(rand() * ([...frag].length - 1))).join("");
      s += (i ? pick(seps) : "") + frag;
    }
    mixed.push(s);
  }
  return [...fixed, ...mixed];
}
