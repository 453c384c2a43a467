#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into DIR/<target>/ (default fuzz/seeds).

Seeds are the checked-in fixtures (tests/fixtures) plus small hand-made documents that reach
parser states the fixtures do not (object streams, RTF destinations, nested MIME, ...).
Targets whose harness reads a selector byte first (see src/fuzzing.rs) get it prepended.
Standard library only. The minimised corpora under fuzz/corpus/ started from these.
"""

import bz2
import gzip
import io
import json
import lzma
import pathlib
import sys
import zipfile
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# Selector bytes: index into Family::names() in src/fuzzing.rs (low bits), plus
# len(names) * hint for the Content-Type / Content-Encoding list.
ZIP = {"docx": 0, "pptx": 1, "xlsx": 2, "odt": 3, "ods": 4, "odp": 5, "epub": 6, "sniff": 7}
MARKUP = {"html": 0, "xml": 1, "json": 2, "ndjson": 3, "md": 4, "svg": 5, "xhtml": 6, "sniff": 7}
COMPRESSED = {"txt.gz": 0, "json.zst": 1, "md.bz2": 2, "csv.xz": 3, "html": 4, "blob": 5,
              "xml.gz": 6, "pdf.gz": 7}


def zip_of(parts):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts:
            z.writestr(name, data)
    return out.getvalue()


def pdf(objects, trailer_extra=""):
    """A PDF with a correct xref table from a list of object bodies (numbered from 1)."""
    out = bytearray(b"%PDF-1.5\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, trailer_extra.encode(), xref)
    return bytes(out)


def stream(dictionary, data, compress=True):
    if compress:
        data = zlib.compress(data)
        dictionary += b" /Filter /FlateDecode"
    return b"<< %s /Length %d >>\nstream\n" % (dictionary, len(data)) + data + b"\nendstream"


def pdf_seeds():
    content = b"BT /F1 12 Tf 72 720 Td (Hello pelican) Tj T* [(Kern)-250(ed)] TJ ET"
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    simple = pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> /XObject << /X1 6 0 R >> >> >>",
        stream(b"", content + b" /X1 Do"),
        font,
        stream(b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] "
               b"/Resources << /Font << /F1 5 0 R >> >>", b"BT /F1 9 Tf (in form) Tj ET"),
        b"<< /Title (Seed title) >>",
    ], "/Info 7 0 R ")
    tounicode_map = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap "
                     b"1 begincodespacerange <0000> <FFFF> endcodespacerange "
                     b"2 beginbfchar <0001> <0041> <0002> <00E9> endbfchar "
                     b"1 beginbfrange <0010> <0020> <0061> endbfrange endcmap end end")
    type0 = pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        stream(b"", b"BT /F1 12 Tf <000100020010> Tj ET"),
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Seed /Encoding /Identity-H "
        b"/DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Seed /W [1 [500 600]] "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>",
        stream(b"", tounicode_map),
    ])
    # Objects 2.. inside an object stream, found through a cross-reference stream.
    inner = [b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
             b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << >> >>"]
    header, body, offset = b"", b"", 0
    for number, obj in zip((2, 3), inner):
        header += b"%d %d " % (number, offset)
        body += obj + b" "
        offset += len(obj) + 1
    objstm = stream(b"/Type /ObjStm /N 2 /First %d" % len(header), header + body)
    out = bytearray(b"%PDF-1.5\n")
    offsets = {}
    for number, obj in ((1, b"<< /Type /Catalog /Pages 2 0 R >>"), (4, stream(b"", content)),
                        (5, objstm)):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref_at = len(out)
    rows = [b"\x00\x00\x00\xff", b"\x01" + offsets[1].to_bytes(2, "big") + b"\x00",
            b"\x02\x00\x05\x00", b"\x02\x00\x05\x01", b"\x01" + offsets[4].to_bytes(2, "big")
            + b"\x00", b"\x01" + offsets[5].to_bytes(2, "big") + b"\x00",
            b"\x01" + xref_at.to_bytes(2, "big") + b"\x00"]
    out += b"6 0 obj\n" + stream(b"/Type /XRef /Size 7 /W [1 2 1] /Root 1 0 R", b"".join(rows))
    out += b"\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return {"simple.pdf": simple, "type0.pdf": type0, "objstm.pdf": bytes(out)}


CONTAINER = (b'<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:'
             b'container" version="1.0"><rootfiles><rootfile full-path="OEBPS/c.opf" '
             b'media-type="application/oebps-package+xml"/></rootfiles></container>')
OPF = (b'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
       b'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title></metadata>'
       b'<manifest><item id="a" href="a.xhtml" media-type="application/xhtml+xml"/>'
       b'<item id="b" href="../b.xhtml" media-type="application/xhtml+xml"/></manifest>'
       b'<spine><itemref idref="a"/><itemref idref="b"/><itemref idref="a"/></spine></package>')
W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
ODF_TEXT = (b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:'
            b'office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
            b'<office:body><office:text><text:h>Head</text:h><text:p>a<text:s text:c="3"/>b'
            b'<text:tab/>c</text:p></office:text></office:body></office:document-content>')


def zip_seeds():
    docx = zip_of([
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", b"<w:document " + W + b"><w:body><w:p><w:r><w:t>flamingo</w:t>"
         b"</w:r><w:r><w:tab/><w:t xml:space=\"preserve\"> lagoon </w:t></w:r></w:p><w:tbl><w:tr>"
         b"<w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:body></w:document>"),
        ("word/footnotes.xml", b"<w:footnotes " + W + b"><w:footnote><w:p><w:r><w:t>note</w:t>"
         b"</w:r></w:p></w:footnote></w:footnotes>"),
        ("docProps/core.xml", b'<cp:coreProperties xmlns:cp="x" xmlns:dc="http://purl.org/dc/'
         b'elements/1.1/"><dc:title>Title</dc:title></cp:coreProperties>'),
    ])
    pptx = zip_of([
        ("ppt/presentation.xml", b'<p:presentation xmlns:p="p" xmlns:r="r"><p:sldIdLst>'
         b'<p:sldId r:id="rId2"/></p:sldIdLst></p:presentation>'),
        ("ppt/_rels/presentation.xml.rels", b'<Relationships><Relationship Id="rId2" '
         b'Target="slides/slide1.xml"/></Relationships>'),
        ("ppt/slides/slide1.xml", b'<p:sld xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>Walrus</a:t>'
         b'</a:r></a:p></p:sld>'),
        ("ppt/notesSlides/notesSlide1.xml", b'<p:notes xmlns:a="a"><a:t>narwhal</a:t></p:notes>'),
    ])
    xlsx = zip_of([
        ("xl/workbook.xml", b'<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" '
         b'r:id="rId1"/></sheets></workbook>'),
        ("xl/_rels/workbook.xml.rels", b'<Relationships><Relationship Id="rId1" '
         b'Target="worksheets/sheet1.xml" Type="http://schemas.openxmlformats.org/'
         b'officeDocument/2006/relationships/worksheet"/></Relationships>'),
        ("xl/sharedStrings.xml", b'<sst><si><t>Penguins</t></si><si><r><t>Ross</t></r></si></sst>'),
        ("xl/worksheets/sheet1.xml", b'<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v>'
         b'</c><c r="B1"><v>845.5</v></c><c r="C1" t="inlineStr"><is><t>in</t></is></c></row>'
         b'</sheetData></worksheet>'),
        ("[Content_Types].xml", b"<Types/>"),
    ])
    odt = zip_of([("mimetype", b"application/vnd.oasis.opendocument.text"),
                  ("content.xml", ODF_TEXT),
                  ("meta.xml", b'<office:document-meta xmlns:dc="http://purl.org/dc/elements/'
                   b'1.1/"><dc:title>Otter</dc:title></office:document-meta>')])
    epub = zip_of([("mimetype", b"application/epub+zip"),
                   ("META-INF/container.xml", CONTAINER),
                   ("OEBPS/c.opf", OPF),
                   ("OEBPS/a.xhtml", b"<html><head><title>A</title></head><body><p>albatross"
                    b"</p><script>x</script></body></html>"),
                   ("b.xhtml", b"<html><body>wingspan</body></html>")])
    seeds = {}
    for kind, fixture in [("docx", "sample.docx"), ("pptx", "sample.pptx"),
                          ("xlsx", "sample.xlsx"), ("odt", "sample.odt"), ("ods", "sample.ods"),
                          ("odp", "sample.odp"), ("epub", "sample.epub"),
                          ("docx", "encrypted.docx")]:
        seeds[fixture] = bytes([ZIP[kind]]) + (FIXTURES / fixture).read_bytes()
    for kind, data in [("docx", docx), ("pptx", pptx), ("xlsx", xlsx), ("odt", odt),
                       ("epub", epub), ("sniff", docx), ("sniff", epub), ("sniff", odt)]:
        seeds[f"min-{kind}-{len(seeds)}"] = bytes([ZIP[kind]]) + data
    return seeds


def rtf_seeds():
    return {
        "sample.rtf": (FIXTURES / "sample.rtf").read_bytes(),
        "destinations.rtf": rb"{\rtf1\ansi\ansicpg1251\deff0{\fonttbl{\f0\fcharset204 Arial;}"
        rb"{\f1\fcharset128 MS;}}{\info{\title T\'e9}{\author A}}{\*\generator g;}"
        rb"\uc2 \u1044?? \f1\'82\'a0 {\pict\pngblip 89504e47}{\field{\*\fldinst HYPERLINK x}"
        rb"{\fldrslt link}}\bin4 \x00\x01\x02\x03 \par\tab\line\~\-\_ {\*\unknown x}\emdash}",
        "nested.rtf": b"{\\rtf1 " + b"{" * 60 + b"deep" + b"}" * 60 + b"\\'\\'zz \\u-3913 ?}",
    }


MARKUP_SEEDS = [
    ("html", b"<!DOCTYPE html><html><head><title>T &amp; t</title><meta charset=\"koi8-r\">"
     b"<script>if(a<b){}</script><style>p{}</style></head><body><p>caf&eacute; <b>x</b></p>"
     b"<!-- c --><template><p>t</p></template><noscript>n</noscript><pre>  a\n b</pre>"
     b"<table><tr><td>1<td>2</table><br>&#x1F600;&notanentity</body></html>"),
    ("xml", b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><!DOCTYPE r [<!ENTITY e \"x\">]>"
     b"<r a=\"1 &amp; 2\"><c><![CDATA[<raw>]]></c>&#233;&e;<?pi x?><!--c--><n:x xmlns:n=\"u\""
     b" n:a=\"v\"/></r>"),
    ("json", b"{\"a\": [1, 2.5e3, true, null, \"\\u00e9\\n\\ud83d\\ude00\"], \"b\": {\"c\": -0}}"
     b"\n{\"d\": \"e\"}\n"),
    ("ndjson", b"{\"a\":1}\n\n[\"b\",{\"c\":\"d\"}]\n\"s\"\n"),
    ("md", b"\xEF\xBB\xBF---\ntitle: Front\n---\n# Title\n\nsome *text*\n"),
    ("svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"><title>S</title><text>t</text></svg>"),
    ("xhtml", b"<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>"
     b"X</title></head><body><p>p</p></body></html>"),
    ("sniff", b"<html><title>sniffed</title>body</html>"),
    ("sniff", b"\xFF\xFE<\x00a\x00>\x00b\x00<\x00/\x00a\x00>\x00"),
    ("sniff", b"{\"k\": \"v\"}"),
    ("sniff", b"%PDF-1.4 not really"),
]


def markup_seeds():
    seeds = {}
    for i, (kind, data) in enumerate(MARKUP_SEEDS):
        for hint in (0, 1, 2):
            if hint and kind not in ("html", "xml", "sniff"):
                continue
            seeds[f"{kind}-{i}-{hint}"] = bytes([MARKUP[kind] + 8 * hint]) + data
    return seeds


def email_seeds():
    nested = (b"From: =?utf-8?B?QW5uIE90dGVy?= <ann@example.com>\r\nTo: b@example.com\r\n"
              b"Subject: =?iso-8859-1?Q?caf=E9?= sightings\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\n"
              b"Content-Type: multipart/alternative; boundary=\"i\"\r\n\r\n--i\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
              b"quoted-printable\r\n\r\nkingfisher =C3=A9=\r\nsoft break\r\n--i\r\n"
              b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
              b"PHA+aHRtbCBwYXJ0PC9wPg==\r\n--i--\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n"
              b"Subject: inner\r\n\r\ninner body\r\n--o\r\nContent-Type: application/pdf; "
              b"name=\"map.pdf\"\r\nContent-Disposition: attachment; filename*=UTF-8''m%C3%A9.pdf"
              b"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--o--\r\n")
    return {"sample.eml": (FIXTURES / "sample.eml").read_bytes(), "nested.eml": nested,
            "plain.eml": b"Subject: hi\n\nplain body\n"}


def compressed_seeds():
    seeds = {}
    for kind, fixture in [("txt.gz", "report.txt.gz"), ("json.zst", "logs.json.zst"),
                          ("md.bz2", "notes.md.bz2"), ("csv.xz", "table.csv.xz"),
                          ("txt.gz", "truncated.txt.gz")]:
        seeds[fixture] = bytes([COMPRESSED[kind]]) + (FIXTURES / fixture).read_bytes()
    html = b"<p>encoded</p>"
    seeds["html-gzip"] = bytes([COMPRESSED["html"] + 8 * 1]) + gzip.compress(html)
    seeds["html-gzip-gzip"] = bytes([COMPRESSED["html"] + 8 * 4]) + gzip.compress(
        gzip.compress(html))
    seeds["html-xz-bzip2"] = bytes([COMPRESSED["html"] + 8 * 3]) + lzma.compress(
        bz2.compress(html))
    seeds["blob-gz-gz"] = bytes([COMPRESSED["blob"]]) + gzip.compress(gzip.compress(b"{\"a\":1}"))
    seeds["blob-xz"] = bytes([COMPRESSED["blob"]]) + lzma.compress(b"<html>x</html>")
    seeds["xml-gz"] = bytes([COMPRESSED["xml.gz"]]) + gzip.compress(b"<a>b</a>")
    seeds["pdf-gz"] = bytes([COMPRESSED["pdf.gz"]]) + gzip.compress(pdf_seeds()["simple.pdf"])
    seeds["two-members"] = bytes([COMPRESSED["txt.gz"]]) + gzip.compress(b"a") + gzip.compress(
        b"b")
    return seeds


def config_seeds():
    valid = (b"connectors:\n  - id: team-docs\n    buckets: [\"team-docs\"]\n    region: us-east-1\n"
             b"    endpoint_url: http://127.0.0.1:9000\n    aws_access_key_id: ${SET}\n"
             b"    aws_secret_access_key: ${LONG}\n    aws_session_token: ${UNSET:-}\n"
             b"    sync_rules: [{\"bucket\": \"team-docs\", \"glob\": [\"**/*.md\"]}]\n"
             b"    schedule: \"0 */5 * * * *\"\n    max_extracted_bytes: 1000\n")
    anchors = (b"base: &b {region: ${YAML}, buckets: ['*']}\nconnectors:\n  - <<: *b\n"
               b"    id: x\n    role_arn: arn:aws:iam::123456789012:role/r\n"
               b"    external_id: $${LITERAL}\n  - !tag {id: y}\nlisten: 127.0.0.1:1\n")
    return {"example.yml": (ROOT / "config.example.yml").read_bytes(), "valid.yml": valid,
            "anchors.yml": anchors, "empty.yml": b"", "list.yml": b"- ${EMPTY}\n- 1\n"}


def rules_seeds():
    seeds = {}
    keys = b"\ndocs/a.md\nfolder1/docs/x.PDF\nnotes/drafts/y.md\n_z.md\n\xc3\xa9/.md\n"
    for path in sorted((ROOT / "sync-rules").glob("*.json")):
        one_line = json.dumps(json.loads(path.read_text())).encode()
        seeds[path.name] = one_line + keys
    seeds["odd.json"] = (b"[{\"bucket\": \"b\", \"prefix\": \"\", \"glob\": [\"{a,b}/**/[!x]*.?\"],"
                         b" \"exclude\": [\"**\"]}, {\"bucket\": \"b\", \"prefix\": \"a\"}]" + keys)
    return seeds


TARGETS = {
    "extract_pdf": lambda: {**pdf_seeds(), **{n: (FIXTURES / n).read_bytes() for n in (
        "sample.pdf", "encrypted.pdf", "owner-password.pdf")}},
    "extract_zip": zip_seeds,
    "extract_rtf": rtf_seeds,
    "extract_markup": markup_seeds,
    "extract_email": email_seeds,
    "extract_compressed": compressed_seeds,
    "config": config_seeds,
    "sync_rules": rules_seeds,
}


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "seeds"
    for target, make in TARGETS.items():
        directory = out / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in make().items():
            (directory / name).write_bytes(data)
        print(f"{target}: {len(list(directory.iterdir()))} seeds")


if __name__ == "__main__":
    main()
