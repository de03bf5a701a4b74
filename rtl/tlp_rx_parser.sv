`resetall
`timescale 1ns / 1ps
`default_nettype none

// TLP receive parser: raw TLP bytes in (AXI4-Stream, wire order: TLP byte i at tdata[8i+7:8i] of the
// first beat, continuing across beats) -> one parsed header per TLP plus its payload re-aligned so
// payload byte 0 sits in lane 0.
//
// * The prefixes and the header must fit in the first beat: up to 4 prefix DWs + a 4-DW header =
//   32 bytes, hence DATA_W >= 256. tkeep must be contiguous from lane 0 and full on every beat but the last.
// * Errors visible in the first beat are reported in hdr_o.err (pcie.md §1-§2: reserved Fmt/Type,
//   prefix rules, truncation, AT = 11, length mismatch when the whole TLP is in the first beat). Such a
//   TLP produces no payload; its remaining beats are consumed and dropped.
// * A TLP with data longer than one beat is streamed out as it arrives; a payload byte count that does
//   not match Length is flagged on the last payload beat (m_axis_tuser). A consumer that must not act
//   on a malformed write (the DMA engine) checks it before committing.
// * Bus ports use the cocotbext-axi names (s_axis_*, m_axis_*); other ports carry _i/_o.
module tlp_rx_parser
  import iommu_pkg::*;
#(
  parameter int DATA_W = 256
) (
  input  logic              clk_i,
  input  logic              rst_ni,

  input  logic [DATA_W-1:0] s_axis_tdata,
  input  logic [DATA_W/8-1:0] s_axis_tkeep,
  input  logic              s_axis_tvalid,
  input  logic              s_axis_tlast,
  output logic              s_axis_tready,

  output tlp_hdr_t          hdr_o,
  output logic              hdr_valid_o,
  input  logic              hdr_ready_i,

  output logic [DATA_W-1:0] m_axis_tdata,
  output logic [DATA_W/8-1:0] m_axis_tkeep,
  output logic              m_axis_tvalid,
  output logic              m_axis_tlast,
  output logic              m_axis_tuser,   // on the last beat: payload length did not match the header
  input  logic              m_axis_tready,
  output logic              idle_o          // between TLPs, nothing held: every beat taken has left
);

  localparam int BYTES = DATA_W / 8;
  localparam int CNT_W = $clog2(BYTES + 1);

  if (DATA_W < 256 || DATA_W % 32 != 0) begin : g_bad_width
    $error("tlp_rx_parser: DATA_W must be a multiple of 32 and >= 256 (prefixes + header in one beat)");
  end

  // -----------------------------------------------------------------------------------------------
  // First-beat decode (combinational, from the input beat)
  // -----------------------------------------------------------------------------------------------
  function automatic logic [CNT_W-1:0] keep_count(input logic [BYTES-1:0] keep);
    keep_count = '0;
    for (int i = 0; i < BYTES; i++) keep_count += CNT_W'(keep[i]);
  endfunction

  // header DW k, as drawn in the spec (byte 4k in bits 31:24)
  function automatic logic [31:0] dw_at(input logic [DATA_W-1:0] d, input int k);
    dw_at = {d[32*k +: 8], d[32*k+8 +: 8], d[32*k+16 +: 8], d[32*k+24 +: 8]};
  endfunction

  logic [CNT_W-1:0] in_keep_cnt;
  logic [2:0]       pfx_cnt;
  logic             pfx_err;
  logic             pasid_valid, pmr, er, other_e2e;
  logic [19:0]      pasid;
  logic [31:0]      h0, h1, h2, h3;
  tlp_hdr_t         hdr_d;
  logic [5:0]       hdr_off;      // bytes of prefixes + header = offset of payload byte 0
  logic [12:0]      payload_bytes;
  logic             fmt_type_err, length_err;

  always_comb begin
    logic seen_e2e;
    /* verilator lint_off UNUSEDSIGNAL */  // prefix bits 21:20 are reserved and ignored on receipt
    logic [31:0] dw;
    /* verilator lint_on UNUSEDSIGNAL */
    logic leading;
    in_keep_cnt = keep_count(s_axis_tkeep);

    // Count the prefix DWs in front of the header (only DWs the beat actually carries).
    pfx_cnt     = '0;
    pfx_err     = 1'b0;
    pasid_valid = 1'b0;
    pmr         = 1'b0;
    er          = 1'b0;
    pasid       = '0;
    other_e2e   = 1'b0;
    seen_e2e    = 1'b0;
    leading     = 1'b1;
    for (int k = 0; k < 5; k++) begin
      dw = dw_at(s_axis_tdata, k);
      if (leading && (int'(in_keep_cnt) >= 4 * (k + 1)) && dw[31:29] == FMT_PREFIX) begin
        if (k == 4) begin
          pfx_err = 1'b1;                       // a fifth prefix: more than the 4 allowed
        end else begin
          pfx_cnt = 3'(k + 1);
          if (dw[28]) begin                     // End-End prefix
            seen_e2e = 1'b1;
            if (dw[27:24] == E2E_PASID) begin
              if (pasid_valid) pfx_err = 1'b1;  // at most one PASID prefix (pcie.md §2.2)
              pasid_valid = 1'b1;
              pmr   = dw[23];
              er    = dw[22];
              pasid = dw[19:0];
              // dw[21:20] are reserved: ignored on receipt
            end else begin
              other_e2e = 1'b1;
            end
          end else if (seen_e2e) begin
            pfx_err = 1'b1;                     // local prefix after an End-End one (pcie.md §2.1)
          end
        end
      end else begin
        leading = 1'b0;
      end
    end

    h0 = dw_at(s_axis_tdata, int'(pfx_cnt));
    h1 = dw_at(s_axis_tdata, int'(pfx_cnt) + 1);
    h2 = dw_at(s_axis_tdata, int'(pfx_cnt) + 2);
    h3 = dw_at(s_axis_tdata, int'(pfx_cnt) + 3);

    hdr_d = '0;
    hdr_d.pfx_cnt      = pfx_cnt;
    hdr_d.pasid_valid  = pasid_valid;
    hdr_d.pmr          = pmr;
    hdr_d.er           = er;
    hdr_d.pasid        = pasid;
    hdr_d.other_e2e    = other_e2e;
    hdr_d.fmt          = h0[31:29];
    hdr_d.tlp_type     = h0[28:24];
    hdr_d.tc           = h0[22:20];
    hdr_d.attr         = {h0[18], h0[13:12]};
    hdr_d.ln           = h0[17];
    hdr_d.th           = h0[16];
    hdr_d.td           = h0[15];
    hdr_d.ep           = h0[14];
    hdr_d.at           = h0[11:10];
    hdr_d.length       = h0[9:0];
    hdr_d.requester_id = h1[31:16];
    // Tag[7:0] is byte 6 in requests and messages, byte 10 in completions (pcie.md §1.3, §1.4)
    hdr_d.tag          = {h0[23], h0[19], (h0[28:25] == 4'b0_101) ? h2[15:8] : h1[15:8]};
    hdr_d.last_be      = h1[7:4];
    hdr_d.first_be     = h1[3:0];
    hdr_d.msg_code     = h1[7:0];
    hdr_d.dw1          = h1;
    hdr_d.dw2          = h2;
    hdr_d.dw3          = h3;
    if (h0[29]) begin                           // Fmt[0]: 4-DW header, 64-bit address
      hdr_d.addr = {h2, h3[31:2], 2'b00};
      hdr_d.ph   = h3[1:0];
    end else begin
      hdr_d.addr = {32'h0, h2[31:2], 2'b00};
      hdr_d.ph   = h2[1:0];
    end

    // Which TLP is it (pcie.md §1.2 Fmt/Type table)?
    hdr_d.kind  = TLP_OTHER;
    fmt_type_err = h0[31];                                          // Fmt 1xx other than a prefix
    unique casez (h0[28:24])
      TYPE_MEM:    hdr_d.kind = h0[30] ? TLP_MEM_WR : TLP_MEM_RD;
      TYPE_MEM_LK: begin
        hdr_d.kind = TLP_MEM_RD;
        if (h0[30]) fmt_type_err = 1'b1;                            // no MWrLk
      end
      TYPE_CPL, TYPE_CPL_LK: begin
        hdr_d.kind = TLP_CPL;
        if (h0[29]) fmt_type_err = 1'b1;                            // completions are 3-DW
      end
      5'b1_0???: begin
        hdr_d.kind = TLP_MSG;
        if (!h0[29]) fmt_type_err = 1'b1;                           // messages are 4-DW
      end
      5'b0_0010, 5'b0_0100, 5'b0_0101: begin                        // IO, Cfg0, Cfg1: 3-DW only
        if (h0[29]) fmt_type_err = 1'b1;
      end
      5'b0_1100, 5'b0_1101, 5'b0_1110: begin                        // AtomicOps: with data
        if (!h0[30]) fmt_type_err = 1'b1;
      end
      5'b1_1011: begin                                              // DMWr (with data), TCfgRd (3-DW)
        if (!h0[30] && h0[29]) fmt_type_err = 1'b1;
      end
      default: fmt_type_err = 1'b1;
    endcase

    hdr_off       = 6'(4 * int'(pfx_cnt)) + (h0[29] ? 6'd16 : 6'd12);
    payload_bytes = !h0[30] ? 13'd0 : (h0[9:0] == '0) ? 13'd4096 : {1'b0, h0[9:0], 2'b00};
    hdr_d.payload_bytes = payload_bytes;

    // Length against the bytes actually present (only fully decidable in the first beat)
    if (!s_axis_tlast) length_err = payload_bytes <= 13'(BYTES) - 13'(hdr_off);
    else               length_err = 13'(in_keep_cnt) != 13'(hdr_off) + payload_bytes;

    // One error per TLP, in the order models.tlp.decode finds them (highest priority last):
    // PASID where it is not allowed < AT = 11b < length < short header < Fmt/Type < no DW0 < prefix rules.
    hdr_d.err = TLP_OK;
    // pcie.md §2.2: no PASID prefix on completions or on an ATS Invalidate Completion (Msg 0x32, code 0x02)
    if (pasid_valid && (hdr_d.kind == TLP_CPL || (h0[31:24] == 8'h32 && h1[7:0] == MSG_ATS_INV_CPL)))
      hdr_d.err = TLP_ERR_PREFIX;
    if ((hdr_d.kind == TLP_MEM_RD || hdr_d.kind == TLP_MEM_WR) && h0[11:10] == 2'b11)
      hdr_d.err = TLP_ERR_RESERVED;
    if (length_err) hdr_d.err = TLP_ERR_LENGTH;
    if (int'(in_keep_cnt) < int'(hdr_off)) hdr_d.err = TLP_ERR_TRUNCATED;
    if (fmt_type_err) hdr_d.err = TLP_ERR_FMT_TYPE;
    if (int'(in_keep_cnt) < 4 * int'(pfx_cnt) + 4) hdr_d.err = TLP_ERR_TRUNCATED;
    if (pfx_err) hdr_d.err = TLP_ERR_PREFIX;
  end

  // -----------------------------------------------------------------------------------------------
  // Control
  // -----------------------------------------------------------------------------------------------
  typedef enum logic [1:0] {ST_HEAD, ST_DATA, ST_FLUSH, ST_DROP} state_e;
  state_e state_q, state_d;

  logic [DATA_W-1:0]  hold_q;
  logic [BYTES-1:0]   hold_keep_q;
  logic [5:0]         shift_q;              // payload byte 0 offset inside the first beat
  logic [13:0]        recv_q;               // payload bytes received so far (saturating)
  logic [12:0]        expect_q;
  logic               len_err_q;

  logic hdr_free, out_free, s_fire;
  assign hdr_free = !hdr_valid_o || hdr_ready_i;
  assign out_free = !m_axis_tvalid || m_axis_tready;

  always_comb begin
    unique case (state_q)
      ST_HEAD:  s_axis_tready = hdr_free;
      ST_DATA:  s_axis_tready = out_free;
      ST_FLUSH: s_axis_tready = 1'b0;
      ST_DROP:  s_axis_tready = 1'b1;
      default:  s_axis_tready = 1'b0;
    endcase
  end
  assign s_fire = s_axis_tvalid && s_axis_tready;
  assign idle_o = state_q == ST_HEAD && !hdr_valid_o && !m_axis_tvalid;

  // payload bytes shift..shift+BYTES-1 of {new beat, held beat}
  logic [2*DATA_W-1:0]  cat_data;
  logic [2*BYTES-1:0]   cat_keep;
  logic [DATA_W-1:0]    comb_data;
  logic [BYTES-1:0]     comb_keep;
  logic                 leftover;           // the beat just taken has payload bytes for one more output beat
  logic [13:0]          recv_total;
  assign cat_data   = state_q == ST_FLUSH ? {{DATA_W{1'b0}}, hold_q} : {s_axis_tdata, hold_q};
  assign cat_keep   = state_q == ST_FLUSH ? {{BYTES{1'b0}}, hold_keep_q} : {s_axis_tkeep, hold_keep_q};
  assign comb_data  = DATA_W'(cat_data >> {shift_q, 3'b000});
  assign comb_keep  = BYTES'(cat_keep >> shift_q);
  assign leftover   = (s_axis_tkeep >> shift_q) != '0;
  assign recv_total = recv_q + 14'(keep_count(s_axis_tkeep));

  always_comb begin
    state_d = state_q;
    unique case (state_q)
      ST_HEAD: if (s_fire) begin
        if (hdr_d.err != TLP_OK)        state_d = s_axis_tlast ? ST_HEAD : ST_DROP;
        else if (!s_axis_tlast)         state_d = ST_DATA;   // more payload beats follow
        else if (payload_bytes != '0)   state_d = ST_FLUSH;  // whole TLP in one beat
      end
      ST_DATA:  if (s_fire && s_axis_tlast) state_d = leftover ? ST_FLUSH : ST_HEAD;
      ST_FLUSH: if (out_free) state_d = ST_HEAD;
      ST_DROP:  if (s_fire && s_axis_tlast) state_d = ST_HEAD;
      default:  state_d = ST_HEAD;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q       <= ST_HEAD;
      hdr_valid_o   <= 1'b0;
      hdr_o         <= '0;
      hold_q        <= '0;
      hold_keep_q   <= '0;
      shift_q       <= '0;
      recv_q        <= '0;
      expect_q      <= '0;
      len_err_q     <= 1'b0;
      m_axis_tvalid <= 1'b0;
      m_axis_tdata  <= '0;
      m_axis_tkeep  <= '0;
      m_axis_tlast  <= 1'b0;
      m_axis_tuser  <= 1'b0;
    end else begin
      state_q <= state_d;
      if (hdr_ready_i) hdr_valid_o <= 1'b0;
      if (m_axis_tready) m_axis_tvalid <= 1'b0;

      unique case (state_q)
        ST_HEAD: if (s_fire) begin
          hdr_o       <= hdr_d;
          hdr_valid_o <= 1'b1;
          hold_q      <= s_axis_tdata;
          hold_keep_q <= s_axis_tkeep;
          shift_q     <= hdr_off;
          recv_q      <= 14'(in_keep_cnt) - 14'(hdr_off);
          expect_q    <= payload_bytes;
          len_err_q   <= 1'b0;
        end
        ST_DATA: if (s_fire) begin
          m_axis_tvalid <= 1'b1;
          m_axis_tdata  <= comb_data;
          m_axis_tkeep  <= comb_keep;
          m_axis_tlast  <= s_axis_tlast && !leftover;
          m_axis_tuser  <= s_axis_tlast && !leftover && recv_total != {1'b0, expect_q};
          len_err_q     <= recv_total != {1'b0, expect_q};
          hold_q        <= s_axis_tdata;
          hold_keep_q   <= s_axis_tkeep;
          recv_q        <= recv_total < recv_q ? '1 : recv_total;   // saturate on absurdly long input
        end
        ST_FLUSH: if (out_free) begin
          m_axis_tvalid <= 1'b1;
          m_axis_tdata  <= comb_data;
          m_axis_tkeep  <= comb_keep;
          m_axis_tlast  <= 1'b1;
          m_axis_tuser  <= len_err_q;
        end
        default: ;
      endcase
    end
  end

endmodule

`resetall
