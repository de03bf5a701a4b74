`resetall
`timescale 1ns / 1ps
`default_nettype none

// TLP transmitter: NUM_SRC sources, each a header descriptor (dma_pkg::tx_hdr_t: prefix + header DWs)
// plus an optional payload stream, -> raw TLP bytes on one AXI4-Stream, in the wire format of
// tlp_rx_parser's input (TLP byte i at tdata[8i+7:8i] of the first beat, continuing across beats;
// one TLP per frame, tkeep contiguous from lane 0 and full on every beat but the last).
//
// * Packing: the payload follows the header bytes directly, so a TLP of H header bytes and P payload
//   bytes takes ceil((H + P) / (DATA_W/8)) beats: a 1-DW CplD (12 + 4 bytes) or an ATS translation
//   completion (12 + 8) is one beat at DATA_W >= 256. Each payload beat is rotated by the header
//   bytes that share its first output beat (H; at DATA_W < 256 a header longer than a beat first
//   goes out in full header beats, and the rest of it shares the beat); the bytes rotated past the
//   beat wait in a residue register for the next one.
// * Arbitration: round robin between sources, one whole TLP at a time, TLPs in the order their
//   headers were granted. Granted headers wait in a queue of HQ; when it is empty and the transmitter
//   is between TLPs, a granted header goes straight to the emitter, so its first beat (with its first
//   payload beat, taken in the same cycle) can leave in the cycle the header is taken.
// * Throughput: one beat per cycle, and a TLP's first beat follows the previous TLP's last beat
//   without an idle cycle, as long as its header and first payload beat are there in time. A source
//   that offers a header together with its payload (one TLP at a time, as iommu_top's ATS
//   completions) sends one single-beat TLP per cycle; so does a source whose payload trails its
//   header by up to HQ cycles, since the queue takes up to HQ headers ahead (dma_rd's payload
//   trails by 3 cycles).
// * Payload input: byte 0 in lane 0, tkeep contiguous from lane 0, full on every beat but the last.
//   The stream must carry exactly the bytes the header's Length announces: the header is not
//   interpreted here. Output lanes outside tkeep carry no meaning.
// * Latency: a header valid while the transmitter is idle (with its first payload beat, if any)
//   leaves 1 cycle later (output register).
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
  localparam int SRC_W  = NUM_SRC > 1 ? $clog2(NUM_SRC) : 1;
  localparam int HDR_W  = DATA_W > 256 ? DATA_W : 256;   // header bytes, padded to at least a beat
  localparam bit LONG   = B < 32;               // a header (up to 32 bytes) may be longer than a beat
  localparam int ROT_LO = LONG ? 1 : 3;         // payload rotations in DWs: the header DWs sharing
  localparam int ROT_HI = LONG ? B / 4 : 8;     // the beat (3..8 when the header fits in one)
  localparam int HQ     = 3;                    // header queue (see the top)
  localparam int HQ_W   = $clog2(HQ);

  if (B < 8 || (B & (B - 1)) != 0) begin : g_bad_width
    $error("tlp_tx: DATA_W must be a power of two >= 64");
  end
  if (NUM_SRC < 1) begin : g_bad_src
    $error("tlp_tx: NUM_SRC must be at least 1");
  end

  // The n low lanes (n <= 32: header bytes and what shares a beat with them are in lanes 0..31)
  function automatic logic [B-1:0] keep_mask(input logic [5:0] n);
    keep_mask = '0;
    for (int i = 0; i < B && i < 32; i++) keep_mask[i] = i < int'(n);
  endfunction

  // Header DWs -> wire bytes (byte 4k+j = DW k bits 31-8j:24-8j); bytes past the header's DWs are
  // left as they are (they never go out: the emitter takes only hl bytes of a header)
  function automatic logic [HDR_W-1:0] hdr_bytes(input logic [255:0] dws);
    hdr_bytes = '0;
    for (int k = 0; k < 8; k++) begin
      for (int j = 0; j < 4; j++) hdr_bytes[8 * (4 * k + j) +: 8] = dws[32 * k + 24 - 8 * j +: 8];
    end
  endfunction

  // -----------------------------------------------------------------------------------------------
  // Headers: granted round robin, queued in grant order (no reset on the storage: an entry is
  // written before it is read)
  // -----------------------------------------------------------------------------------------------
  typedef struct packed {
    logic [SRC_W-1:0] src;
    tx_hdr_t          hdr;
  } hent_t;

  typedef enum logic [1:0] {
    ST_IDLE,                                    // between TLPs
    ST_HDR,                                     // res_q is a full beat of header, more follows
    ST_DATA,                                    // res_q (lanes rk_q = hl_q bytes), then a payload beat
    ST_FLUSH                                    // res_q (lanes rk_q) is the last beat
  } state_e;

  state_e            state_q;
  logic [SRC_W-1:0]  rr_q;
  hent_t             hq_q [HQ];
  logic [HQ_W-1:0]   hq_rd_q, hq_wr_q;
  logic [HQ_W:0]     hq_cnt_q;

  logic              start, hq_empty, take, hq_push, hq_pop, grant_any;
  logic [SRC_W-1:0]  grant;
  hent_t             h_next;                    // the header a TLP starting now would use

  assign start    = state_q == ST_IDLE;
  assign hq_empty = hq_cnt_q == '0;

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
    take    = grant_any && (hq_cnt_q != (HQ_W + 1)'(HQ) || start);   // a starting TLP frees an entry
    hq_pop  = start && !hq_empty;
    hq_push = take && !(start && hq_empty);     // otherwise it goes straight to the emitter
    hdr_ready_o = '0;
    hdr_ready_o[grant] = take;
  end

  assign h_next = hq_empty ? '{src: grant, hdr: hdr_i[grant]} : hq_q[hq_rd_q];

  // -----------------------------------------------------------------------------------------------
  // The TLP going out, as a view: the registered state, or between TLPs the next header as it would
  // be loaded, so a TLP can start going out in the cycle its header is taken
  // -----------------------------------------------------------------------------------------------
  logic [SRC_W-1:0]  src_q;
  logic              data_q;                    // the TLP has a payload
  logic [DATA_W-1:0] res_q;                     // bytes before the next payload beat, from lane 0
  logic [B-1:0]      rk_q;                      // ... their lanes
  logic [HDR_W-1:0]  hdr_q;                     // ST_HDR: the header bytes after res_q
  logic [5:0]        hl_q;                      // header bytes left (res_q's included); in ST_DATA
                                                // the bytes in res_q, i.e. the payload rotation

  state_e            v_state;
  logic [SRC_W-1:0]  v_src;
  logic              v_data;
  logic [DATA_W-1:0] v_res;
  logic [B-1:0]      v_rk;
  logic [HDR_W-1:0]  v_hdr;
  logic [5:0]        v_hl;

  always_comb begin
    logic [HDR_W-1:0] hb;
    hb = hdr_bytes(h_next.hdr.dws);
    if (start) begin
      v_src  = h_next.src;
      v_data = h_next.hdr.has_data;
      v_hl   = {h_next.hdr.n_dw, 2'b00};
      v_res  = hb[DATA_W-1:0];
      v_hdr  = hb >> DATA_W;
      v_rk   = keep_mask(v_hl);
      if (hq_empty && !grant_any)      v_state = ST_IDLE;
      else if (LONG && int'(v_hl) > B) v_state = ST_HDR;
      else                             v_state = v_data ? ST_DATA : ST_FLUSH;
    end else begin
      v_state = state_q;
      v_src   = src_q;
      v_data  = data_q;
      v_hl    = hl_q;
      v_res   = res_q;
      v_hdr   = hdr_q;
      v_rk    = rk_q;
    end
  end

  // -----------------------------------------------------------------------------------------------
  // Emitter: the beat going out (emit), whether it ends the TLP (o_last) or takes a payload beat
  // (pop), and the state after it (n_*: the view itself when nothing goes out)
  // -----------------------------------------------------------------------------------------------
  logic              out_free, emit, pop;
  logic [DATA_W-1:0] p_data, rot;
  logic [B-1:0]      p_keep, rotk, spill;
  logic              p_valid, p_last;
  logic [DATA_W-1:0] o_data;
  logic [B-1:0]      o_keep;
  logic              o_last;
  state_e            n_state;
  logic [DATA_W-1:0] n_res;
  logic [B-1:0]      n_rk;
  logic [HDR_W-1:0]  n_hdr;
  logic [5:0]        n_hl;

  assign out_free = !m_axis_tvalid || m_axis_tready;
  assign p_data   = s_axis_tdata[v_src];
  assign p_keep   = s_axis_tkeep[v_src];
  assign p_valid  = s_axis_tvalid[v_src];
  assign p_last   = s_axis_tlast[v_src];

  // The payload beat rotated up by v_hl bytes (a whole number of DWs, ROT_LO..ROT_HI): its lanes
  // from v_hl up continue this beat, the lanes below v_hl are the spill-over for the next one
  always_comb begin
    rot  = p_data;                              // v_hl = B: nothing of it fits, all spills
    rotk = p_keep;
    for (int s = ROT_LO; s <= ROT_HI; s++) begin
      if (int'(v_hl[5:2]) == s) begin
        rot  = DATA_W'({p_data, p_data} << (32 * s) >> DATA_W);
        rotk = B'({p_keep, p_keep} << (4 * s) >> B);
      end
    end
    spill = rotk & v_rk;
  end

  always_comb begin                             // lanes v_rk from the residue, the rest rotated payload
    for (int i = 0; i < B; i++) o_data[8 * i +: 8] = v_rk[i] ? v_res[8 * i +: 8] : rot[8 * i +: 8];
  end

  always_comb begin
    emit    = 1'b0;
    pop     = 1'b0;
    o_keep  = v_rk;
    o_last  = 1'b0;
    n_state = v_state;
    n_res   = v_res;
    n_rk    = v_rk;
    n_hdr   = v_hdr;
    n_hl    = v_hl;
    unique case (v_state)
      ST_HDR: begin                             // v_hl > B: v_rk is full
        emit = out_free;
        if (emit) begin
          n_res = v_hdr[DATA_W-1:0];
          n_hdr = v_hdr >> DATA_W;
          n_hl  = v_hl - 6'(B);
          n_rk  = keep_mask(n_hl);
          if (int'(n_hl) > B) n_state = ST_HDR;
          else                n_state = v_data ? ST_DATA : ST_FLUSH;
        end
      end
      ST_DATA: begin
        emit   = out_free && p_valid;
        pop    = emit;
        o_keep = v_rk | rotk;
        o_last = p_last && spill == '0;
        if (emit) begin
          n_res = rot;
          n_rk  = spill;                        // = v_rk unless this is the payload's last beat
          if (o_last)      n_state = ST_IDLE;
          else if (p_last) n_state = ST_FLUSH;
        end
      end
      ST_FLUSH: begin
        emit   = out_free;
        o_last = 1'b1;
        if (emit) n_state = ST_IDLE;
      end
      default: ;
    endcase
  end

  always_comb begin
    s_axis_tready = '0;
    s_axis_tready[v_src] = pop;
  end

  always_ff @(posedge clk_i) begin
    if (hq_push) hq_q[hq_wr_q] <= '{src: grant, hdr: hdr_i[grant]};
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      rr_q          <= '0;
      hq_rd_q       <= '0;
      hq_wr_q       <= '0;
      hq_cnt_q      <= '0;
      state_q       <= ST_IDLE;
      src_q         <= '0;
      data_q        <= 1'b0;
      res_q         <= '0;
      rk_q          <= '0;
      hdr_q         <= '0;
      hl_q          <= '0;
      m_axis_tvalid <= 1'b0;
      m_axis_tdata  <= '0;
      m_axis_tkeep  <= '0;
      m_axis_tlast  <= 1'b0;
    end else begin
      if (take)    rr_q    <= int'(grant) == NUM_SRC - 1 ? '0 : grant + 1'b1;
      if (hq_push) hq_wr_q <= int'(hq_wr_q) == HQ - 1 ? '0 : hq_wr_q + 1'b1;
      if (hq_pop)  hq_rd_q <= int'(hq_rd_q) == HQ - 1 ? '0 : hq_rd_q + 1'b1;
      hq_cnt_q <= hq_cnt_q + (HQ_W + 1)'(hq_push) - (HQ_W + 1)'(hq_pop);

      // the view advanced by the beat that went out (a header taken but not sent yet is loaded)
      state_q <= n_state;
      src_q   <= v_src;
      data_q  <= v_data;
      res_q   <= n_res;
      rk_q    <= n_rk;
      if (LONG) hdr_q <= n_hdr;                 // stays 0 when every header fits in a beat
      hl_q    <= n_hl;

      // output register
      if (m_axis_tready) m_axis_tvalid <= 1'b0;
      if (emit) begin
        m_axis_tvalid <= 1'b1;
        m_axis_tdata  <= o_data;
        m_axis_tkeep  <= o_keep;
        m_axis_tlast  <= o_last;
      end
    end
  end

endmodule

`resetall
