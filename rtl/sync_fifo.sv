`resetall
`timescale 1ns / 1ps
`default_nettype none

// A small synchronous FIFO of packed words (flops, DEPTH a power of two >= 2). ready_o = not full,
// valid_o = not empty; data_o is the head word, registered storage (no bypass from data_i).
module sync_fifo #(
  parameter int unsigned WIDTH = 8,
  parameter int unsigned DEPTH = 4
) (
  input  logic             clk_i,
  input  logic             rst_ni,

  input  logic [WIDTH-1:0] data_i,
  input  logic             valid_i,
  output logic             ready_o,

  output logic [WIDTH-1:0] data_o,
  output logic             valid_o,
  input  logic             ready_i,

  output logic             empty_o
);

  localparam int unsigned PTR_W = $clog2(DEPTH);

  if (DEPTH < 2 || (DEPTH & (DEPTH - 1)) != 0) begin : g_bad_depth
    $error("sync_fifo: DEPTH must be a power of two >= 2");
  end

  logic [DEPTH-1:0][WIDTH-1:0] mem_q;
  logic [PTR_W-1:0]            rd_q, wr_q;
  logic [PTR_W:0]              count_q;
  logic                        push, pop;

  assign ready_o = count_q != (PTR_W + 1)'(DEPTH);
  assign valid_o = count_q != '0;
  assign empty_o = count_q == '0;
  assign data_o  = mem_q[rd_q];
  assign push    = valid_i && ready_o;
  assign pop     = valid_o && ready_i;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      rd_q    <= '0;
      wr_q    <= '0;
      count_q <= '0;
    end else begin
      if (push) wr_q <= wr_q + PTR_W'(1);
      if (pop)  rd_q <= rd_q + PTR_W'(1);
      count_q <= count_q + (PTR_W + 1)'(push) - (PTR_W + 1)'(pop);
    end
  end

  // storage without reset: a word is only read after it was written
  always_ff @(posedge clk_i) begin
    if (push) mem_q[wr_q] <= data_i;
  end

endmodule

`resetall
