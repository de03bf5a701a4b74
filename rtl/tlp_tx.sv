`resetall
`timescale 1ns / 1ps
`default_nettype none

// TLP transmitter: NUM_SRC sources, each a header descriptor (dma_pkg::tx_hdr_t: prefix + header DWs)
// plus an optional payload stream, -> raw TLP bytes on one AXI4-Stream, in the wire format of
// tlp_rx_parser's input (TLP byte i at tdata[8i+7:8i] of the first beat, continuing across beats;
// one TLP per frame, tkeep full on every beat but the last).
//
// * Arbitration: round robin between sources, one whole TLP at a time. The next header is taken
//   while the current TLP is still going out, so back-to-back TLPs leave no idle beat.
// * A TLP of H header bytes and P payload bytes takes ceil((H + P) / (DATA_W/8)) beats. The payload
//   is shifted by H mod (DATA_W/8) bytes on the way through (one residue register); a header longer
//   than a beat (DATA_W < 256) goes out over several beats first.
// * Payload input: byte 0 in lane 0, tkeep contiguous from lane 0, full on every beat but the last.
//   The stream must carry exactly the bytes the header's Length announces: the header is not
//   interpreted here.
// * Latency: a header that arrives while the transmitter is idle leaves 2 cycles later (header slot,
//   then output register).
module tlp_tx
  import dma_pkg::*;
#(
  parameter int DATA_W  = 256,
  parameter int NUM_SRC = 2
) (
  input  logic                              clk_i,
  input  logic                              rst_ni,

  input  tx_hdr_t [NUM_SRC-1:0]             hdr_i,
  input  logic [NUM_SRC-1:0]                hdr_valid_i,
  output logic [NUM_SRC-1:0]                hdr_ready_o,

  input  logic [NUM_SRC-1:0][DATA_W-1:0]    s_axis_tdata,
  input  logic [NUM_SRC-1:0][DATA_W/8-1:0]  s_axis_tkeep,
  input  logic [NUM_SRC-1:0]                s_axis_tvalid,
  input  logic [NUM_SRC-1:0]                s_axis_tlast,
  output logic [NUM_SRC-1:0]                s_axis_tready,

  output logic [DATA_W-1:0]                 m_axis_tdata,
  output logic [DATA_W/8-1:0]               m_axis_tkeep,
  output logic                              m_axis_tvalid,
  output logic                              m_axis_tlast,
  input  logic                              m_axis_tready
);

  localparam int B      = DATA_W / 8;           // bytes per beat
  localparam int CNT_W  = $clog2(B + 1);        // 0..B
  localparam int SRC_W  = NUM_SRC > 1 ? $clog2(NUM_SRC) : 1;
  localparam int HDR_W  = DATA_W > 256 ? DATA_W : 256;   // header bytes, padded to at least a beat

  if (B < 8 || (B & (B - 1)) != 0) begin : g_bad_width
    $error("tlp_tx: DATA_W must be a power of two >= 64");
  end
  if (NUM_SRC < 1) begin : g_bad_src
    $error("tlp_tx: NUM_SRC must be at least 1");
  end

  function automatic logic [B-1:0] keep_mask(input logic [CNT_W:0] n);   // the n low lanes (n <= B)
    keep_mask = '0;
    for (int i = 0; i < B; i++) keep_mask[i] = (CNT_W + 1)'(i) < n;
  endfunction

  function automatic logic [CNT_W-1:0] keep_count(input logic [B-1:0] keep);
    keep_count = '0;
    for (int i = 0; i < B; i++) keep_count += CNT_W'(keep[i]);
  endfunction

  // Header DWs -> wire bytes (byte 4k+j = DW k bits 31-8j:24-8j), bytes past n_dw cleared
  function automatic logic [HDR_W-1:0] hdr_bytes(input logic [3:0] n_dw, input logic [255:0] dws);
    hdr_bytes = '0;
    for (int k = 0; k < 8; k++) begin
      for (int j = 0; j < 4; j++) begin
        if (4'(k) < n_dw) hdr_bytes[8 * (4 * k + j) +: 8] = dws[32 * k + 24 - 8 * j +: 8];
      end
    end
  endfunction

  // -----------------------------------------------------------------------------------------------
  // Header slot: the next TLP to send, chosen round robin while the current one goes out
  // -----------------------------------------------------------------------------------------------
  logic             nxt_valid_q, nxt_data_q;
  logic [SRC_W-1:0] nxt_src_q, rr_q;
  logic [HDR_W-1:0] nxt_hdr_q;
  logic [5:0]       nxt_len_q;                  // header bytes, 12..32
  logic             take_nxt;                   // the emitter starts the TLP in the slot this cycle
  logic             grant_any;
  logic [SRC_W-1:0] grant;

  always_comb begin
    logic [SRC_W-1:0] idx;
    grant_any = 1'b0;
    grant     = '0;
    for (int i = NUM_SRC - 1; i >= 0; i--) begin  // the lowest i from rr_q upward wins
      idx = SRC_W'((int'(rr_q) + i) % NUM_SRC);
      if (hdr_valid_i[idx]) begin
        grant_any = 1'b1;
        grant     = idx;
      end
    end
    hdr_ready_o = '0;
    if (!nxt_valid_q || take_nxt) hdr_ready_o[grant] = grant_any;
  end

  // -----------------------------------------------------------------------------------------------
  // Emitter
  // -----------------------------------------------------------------------------------------------
  typedef enum logic [1:0] {ST_IDLE, ST_HDR, ST_DATA, ST_FLUSH} state_e;
  state_e           state_q;
  logic [SRC_W-1:0] src_q;
  logic             data_q;                     // the current TLP has a payload
  logic [HDR_W-1:0] hdr_q;                      // header bytes not sent yet, next one in lane 0
  logic [5:0]       hl_q;                       // ... and how many
  logic [DATA_W-1:0] res_q;                     // bytes waiting for the next beat, in lanes 0..
  logic [CNT_W-1:0] sh_q;                       // ... how many in ST_DATA (the payload shift)
  logic [CNT_W:0]   flush_q;                    // ... how many in ST_FLUSH

  logic             out_free, emit, finish, pop;
  logic [DATA_W-1:0] p_data;
  logic [B-1:0]     p_keep;
  logic             p_valid, p_last;
  logic [CNT_W-1:0] p_cnt;
  logic [DATA_W-1:0] o_data;
  logic [B-1:0]     o_keep;
  logic             o_last;

  assign out_free = !m_axis_tvalid || m_axis_tready;
  assign p_data   = s_axis_tdata[src_q];
  assign p_keep   = s_axis_tkeep[src_q];
  assign p_valid  = s_axis_tvalid[src_q];
  assign p_last   = s_axis_tlast[src_q];
  assign p_cnt    = keep_count(p_keep);

  // What goes out this cycle (emit), whether it ends the TLP (finish), whether it takes a payload beat
  always_comb begin
    emit   = 1'b0;
    finish = 1'b0;
    pop    = 1'b0;
    o_data = '0;
    o_keep = '0;
    o_last = 1'b0;
    unique case (state_q)
      ST_HDR: begin                             // hl_q >= B: a whole beat of header
        emit   = out_free;
        o_data = hdr_q[DATA_W-1:0];
        o_keep = '1;
        o_last = hl_q == 6'(B) && !data_q;
      end
      ST_DATA: begin                            // res_q (sh_q bytes) then the payload beat
        emit   = out_free && p_valid;
        pop    = emit;
        o_data = res_q | DATA_W'(p_data << (8 * int'(sh_q)));
        if (p_last && {1'b0, p_cnt} + {1'b0, sh_q} <= (CNT_W + 1)'(B)) begin
          o_keep = keep_mask({1'b0, p_cnt} + {1'b0, sh_q});
          o_last = 1'b1;
        end else begin
          o_keep = '1;
        end
      end
      ST_FLUSH: begin
        emit   = out_free;
        o_data = res_q;
        o_keep = keep_mask(flush_q);
        o_last = 1'b1;
      end
      default: ;
    endcase
    finish = emit && o_last;
  end

  assign take_nxt = nxt_valid_q && (state_q == ST_IDLE || finish);
  always_comb begin
    s_axis_tready = '0;
    s_axis_tready[src_q] = pop;
  end

  // The state a TLP continues in when hl header bytes (hdr, lane 0 first) remain
  function automatic state_e after_hdr(input logic [5:0] hl, input logic data);
    if (int'(hl) >= B) return ST_HDR;
    if (hl == 6'd0)    return data ? ST_DATA : ST_IDLE;
    return data ? ST_DATA : ST_FLUSH;
  endfunction

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      nxt_valid_q   <= 1'b0;
      nxt_data_q    <= 1'b0;
      nxt_src_q     <= '0;
      nxt_hdr_q     <= '0;
      nxt_len_q     <= '0;
      rr_q          <= '0;
      state_q       <= ST_IDLE;
      src_q         <= '0;
      data_q        <= 1'b0;
      hdr_q         <= '0;
      hl_q          <= '0;
      res_q         <= '0;
      sh_q          <= '0;
      flush_q       <= '0;
      m_axis_tvalid <= 1'b0;
      m_axis_tdata  <= '0;
      m_axis_tkeep  <= '0;
      m_axis_tlast  <= 1'b0;
    end else begin
      // header slot
      if (take_nxt) nxt_valid_q <= 1'b0;
      if (grant_any && (!nxt_valid_q || take_nxt)) begin
        nxt_valid_q <= 1'b1;
        nxt_src_q   <= grant;
        nxt_hdr_q   <= hdr_bytes(hdr_i[grant].n_dw, hdr_i[grant].dws);
        nxt_len_q   <= {hdr_i[grant].n_dw, 2'b00};
        nxt_data_q  <= hdr_i[grant].has_data;
        rr_q        <= int'(grant) == NUM_SRC - 1 ? '0 : grant + 1'b1;
      end

      // output register
      if (m_axis_tready) m_axis_tvalid <= 1'b0;
      if (emit) begin
        m_axis_tvalid <= 1'b1;
        m_axis_tdata  <= o_data;
        m_axis_tkeep  <= o_keep;
        m_axis_tlast  <= o_last;
      end

      // emitter state
      if (take_nxt) begin
        src_q  <= nxt_src_q;
        data_q <= nxt_data_q;
        hdr_q  <= nxt_hdr_q;
        hl_q   <= nxt_len_q;
        state_q <= after_hdr(nxt_len_q, nxt_data_q);
        res_q  <= nxt_hdr_q[DATA_W-1:0];          // used when the header is shorter than a beat
        sh_q   <= CNT_W'(nxt_len_q);
        flush_q <= (CNT_W + 1)'(nxt_len_q);
      end else if (finish) begin
        state_q <= ST_IDLE;
      end else if (emit) begin
        unique case (state_q)
          ST_HDR: begin
            hdr_q   <= hdr_q >> DATA_W;
            hl_q    <= hl_q - 6'(B);
            state_q <= after_hdr(hl_q - 6'(B), data_q);
            res_q   <= DATA_W'(hdr_q >> DATA_W);
            sh_q    <= CNT_W'(hl_q - 6'(B));
            flush_q <= (CNT_W + 1)'(hl_q - 6'(B));
          end
          ST_DATA: begin                          // not the last beat: keep the spill-over bytes
            res_q <= sh_q == '0 ? '0 : DATA_W'(p_data >> (8 * (B - int'(sh_q))));
            if (p_last) begin                     // the payload ends, its tail needs one more beat
              state_q <= ST_FLUSH;
              flush_q <= {1'b0, p_cnt} + {1'b0, sh_q} - (CNT_W + 1)'(B);
            end
          end
          default: ;
        endcase
      end
    end
  end

endmodule

`resetall
